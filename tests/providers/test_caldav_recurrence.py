"""Recurring series (exported: one VEVENT with an RRULE and RECURRENCE-ID overrides; imported:
expanded within the window), a moved and a cancelled occurrence, all-day events, and a weekly
series across the March DST change in Europe/London."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from conftest import WINDOW, Setup
from harness.caldav_servers import event_ics

from providers.caldav.calendar import uid_for
from providers.errors import NotFound
from sync.event import CanonicalEvent, EventStatus, Recurrence, same_content
from sync.snapshot import RemoteEvent

LONDON = ZoneInfo("Europe/London")


def at(day: int, hour: int = 9, month: int = 3) -> datetime:
    return datetime(2027, month, day, hour, tzinfo=LONDON)


def weekly(title: str = "Pilates", first: datetime | None = None, count: int = 6
           ) -> CanonicalEvent:  # fmt: skip
    first = first or at(1)
    rule = f"FREQ=WEEKLY;BYDAY=MO;COUNT={count}"
    return CanonicalEvent(title, first, first + timedelta(hours=1), time_zone="Europe/London",
                          recurrence=Recurrence(rule=rule))  # fmt: skip


def exception(series: RemoteEvent, slot: datetime, start: datetime, **fields: object
              ) -> CanonicalEvent:  # fmt: skip
    return CanonicalEvent(
        str(fields.get("title", "Pilates")), start, start + timedelta(hours=1),
        time_zone="Europe/London", status=fields.get("status", EventStatus.CONFIRMED),  # type: ignore[arg-type]
        recurrence=Recurrence(series_id=series.id, original_start=slot),
    )  # fmt: skip


def person_sees(setup: Setup, uid: str) -> list[tuple[datetime, str]]:
    """The occurrences as the person's app shows them: expanded from what the server holds."""
    instance = setup.person_event(uid).icalendar_instance
    found = recurring_ical_events.of(instance).between(WINDOW.start, WINDOW.end)
    return sorted((c.start, str(c.get("SUMMARY"))) for c in found)


def test_exported_series_with_a_moved_and_a_cancelled_occurrence(dav: Setup) -> None:
    provider = dav.provider
    series = provider.create(weekly(), "series:0", marker="calsync:c:series")
    moved = exception(series, at(15), at(16, 11), title="Pilates (moved)")
    cancelled = exception(series, at(22), at(22), status=EventStatus.CANCELLED)
    moved_copy = provider.create(moved, "moved:0", marker="calsync:c:moved")
    cancelled_copy = provider.create(cancelled, "cancelled:0", marker="calsync:c:cancelled")

    uid = uid_for("series:0")
    text = str(dav.person_event(uid).data)
    assert text.count("BEGIN:VEVENT") == 2 and text.count("\nRRULE:") == 1
    assert text.count("RECURRENCE-ID") == 1  # the cancelled one is an EXDATE, clients hide it
    assert "EXDATE" in text and "STATUS:CANCELLED" not in text
    assert person_sees(dav, uid) == [
        (at(1), "Pilates"), (at(8), "Pilates"), (at(16, 11), "Pilates (moved)"),
        (at(29), "Pilates"), (at(5, month=4), "Pilates"),
    ]  # fmt: skip

    listed = {i.id: i for i in dav.calendar().list_changes(None).changes}
    assert set(listed) == {series.id, moved_copy.id, cancelled_copy.id}
    for item, written in ((series, weekly()), (moved_copy, moved), (cancelled_copy, cancelled)):
        event = listed[item.id].event
        assert event is not None and same_content(event, written)
        assert listed[item.id].version == item.version
    assert listed[moved_copy.id].marker == "calsync:c:moved"


def test_writing_one_exception_leaves_the_others_versions_alone(dav: Setup) -> None:
    provider = dav.provider
    series = provider.create(weekly(), "series:0", marker="calsync:c:series")
    first = provider.create(exception(series, at(8), at(9, 10)), "a:0", marker="calsync:c:a")
    second = provider.create(exception(series, at(15), at(16, 10)), "b:0", marker="calsync:c:b")

    # Both versions were handed out before either is updated (one run, two updates).
    provider.update(first.id, exception(series, at(8), at(10, 10)), first.version)
    again = provider.update(second.id, exception(series, at(15), at(17, 10)), second.version)
    assert again.event is not None and again.event.start == at(17, 10)

    provider.delete(first.id, provider.get(first.id).version)  # back to the rule's slot
    assert provider.get(first.id).deleted
    assert (at(8), "Pilates") in person_sees(dav, uid_for("series:0"))


def test_person_cancels_an_occurrence_of_our_series(dav: Setup) -> None:
    series = dav.provider.create(weekly(), "series:0", marker="calsync:c:series")
    cursor = dav.provider.list_changes(None).next_cursor
    event = dav.person_event(uid_for("series:0"))
    event.icalendar_component.add("EXDATE", at(8))
    event.save()

    changes = {i.id: i for i in dav.provider.list_changes(cursor).changes}
    slot = changes[f"{series.id}#20270308T090000Z"]
    assert slot.event is not None and slot.event.status is EventStatus.CANCELLED
    assert slot.event.recurrence == Recurrence(series_id=series.id, original_start=at(8))
    assert slot.marker is None  # made by the person, not by us


def foreign_series(setup: Setup) -> None:
    setup.add(event_ics(
        "yoga", at(1, 18), at(1, 19), "Yoga", rrule="FREQ=WEEKLY;COUNT=6", exdates=[at(22, 18)],
        overrides=[(at(15, 18), at(16, 20), at(16, 21), "Yoga (moved)"),
                   (at(29, 18), at(29, 18), at(29, 19), "CANCELLED")],
    ))  # fmt: skip


def test_foreign_series_is_expanded_with_its_exceptions(dav: Setup) -> None:
    foreign_series(dav)
    page = dav.provider.list_changes(None)

    occurrences = sorted((i.event.start, i.event.title, i.id) for i in page.changes if i.event)
    assert [(start, title) for start, title, _ in occurrences] == [
        (at(1, 18), "Yoga"), (at(8, 18), "Yoga"), (at(16, 20), "Yoga (moved)"),
        (at(5, 18, month=4), "Yoga"),
    ]  # fmt: skip
    assert occurrences[2][2] == "yoga.ics#20270315T180000Z"  # named by its original slot
    assert all(i.event and i.event.recurrence is None and i.marker is None for i in page.changes)

    event = dav.person_event("yoga")
    event.icalendar_component.add("EXDATE", at(8, 18))
    event.save()
    later = dav.provider.list_changes(page.next_cursor)
    assert [i.id for i in later.changes if i.deleted] == ["yoga.ics#20270308T180000Z"]
    assert len([i for i in later.changes if not i.deleted]) == 3


def test_writing_one_occurrence_of_a_foreign_series(dav: Setup) -> None:
    foreign_series(dav)
    provider = dav.provider
    first = provider.get("yoga.ics#20270301T180000Z")
    second = provider.get("yoga.ics#20270308T180000Z")
    assert first.event is not None and second.event is not None
    assert provider.get("yoga.ics#20270322T180000Z").deleted  # an EXDATE

    moved = CanonicalEvent("Yoga", at(2, 7), at(2, 8), time_zone="Europe/London")
    updated = provider.update(first.id, moved, first.version)
    provider.delete(second.id, second.version)

    assert updated.event is not None and updated.event.start == at(2, 7)
    seen = person_sees(dav, "yoga")
    assert (at(2, 7), "Yoga") in seen and (at(8, 18), "Yoga") not in seen
    assert "RRULE:FREQ=WEEKLY;COUNT=6" in str(dav.person_event("yoga").data)


def test_all_day_events_both_ways(dav: Setup) -> None:
    dav.add(event_ics("trip", date(2027, 5, 3), date(2027, 5, 5), "Trip"))
    holiday = CanonicalEvent("Closed", date(2027, 12, 24), date(2027, 12, 27), all_day=True)
    created = dav.provider.create(holiday, "holiday:0", marker="calsync:c:holiday")

    listed = {i.id: i for i in dav.calendar().list_changes(None).changes}
    trip = listed["trip.ics"].event
    assert trip is not None and trip.all_day
    assert (trip.start, trip.end) == (date(2027, 5, 3), date(2027, 5, 5))
    ours = listed[created.id].event
    assert ours is not None and same_content(ours, holiday)
    assert "DTSTART;VALUE=DATE:20271224" in str(dav.person_event(uid_for("holiday:0")).data)


def test_weekly_series_across_the_march_dst_change_keeps_local_time(dav: Setup) -> None:
    # Europe/London moves to BST on 28 March 2027: 09:00 local is 09:00 UTC, then 08:00 UTC.
    expected_utc_hours = [9, 9, 8, 8]
    dav.provider.create(weekly("Class", at(15), count=4), "class:0", marker="calsync:c:class")
    seen = person_sees(dav, uid_for("class:0"))
    assert [start.astimezone(LONDON).hour for start, _ in seen] == [9, 9, 9, 9]
    assert [start.astimezone(UTC).hour for start, _ in seen] == expected_utc_hours

    dav.add(event_ics("standup", at(15), at(15, 10), "Stand-up", rrule="FREQ=WEEKLY;COUNT=4"))
    imported = sorted(
        i.event.start for i in dav.provider.list_changes(None).changes
        if i.event and i.marker is None and isinstance(i.event.start, datetime)
    )  # fmt: skip
    assert [start.astimezone(LONDON).hour for start in imported] == [9, 9, 9, 9]
    assert [start.astimezone(UTC).hour for start in imported] == expected_utc_hours


def test_writing_an_occurrence_that_is_gone(dav: Setup) -> None:
    series = dav.provider.create(weekly(), "series:0", marker="calsync:c:series")
    moved = dav.provider.create(exception(series, at(8), at(9, 10)), "a:0",
                                     marker="calsync:c:a")  # fmt: skip
    foreign_series(dav)
    occurrence = dav.provider.get("yoga.ics#20270301T180000Z")

    # The person removes our exception, and cancels the foreign occurrence.
    event = dav.person_event(uid_for("series:0"))
    event.icalendar_instance.subcomponents = [
        c for c in event.icalendar_instance.subcomponents if "RECURRENCE-ID" not in c
    ]
    event.save()
    yoga = dav.person_event("yoga")
    yoga.icalendar_component.add("EXDATE", at(1, 18))
    yoga.save()

    dav.provider.delete(moved.id, moved.version)  # already gone: done
    with pytest.raises(NotFound):
        dav.provider.update(
            occurrence.id, CanonicalEvent("Yoga", at(2, 7), at(2, 8)), occurrence.version
        )
    dav.provider.delete(occurrence.id, occurrence.version)
    assert dav.provider.get(moved.id).deleted and dav.provider.get(occurrence.id).deleted
