"""Export: creates at a deterministic href with If-None-Match, If-Match on updates and deletes,
a UID already present, concurrent edits, time zones and SEQUENCE, read-only calendars."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import Setup, new_calendar, person_client
from harness.caldav_servers import event_ics

from providers.base import CalendarInfo
from providers.caldav.calendar import uid_for
from providers.errors import NotFound, PermanentError, PermanentReason, PreconditionFailed
from sync.event import CanonicalEvent, EventStatus, Recurrence, Transparency, same_content

T = datetime(2027, 6, 7, 9, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


def session(title: str = "Session", hours: int = 0) -> CanonicalEvent:
    return CanonicalEvent(title, T + timedelta(hours=hours), T + timedelta(hours=hours + 1))


def raw(setup: Setup, uid: str) -> str:
    event = setup.person_event(uid)
    return str(event.data)


def test_created_event_reads_back_as_written(dav: Setup) -> None:
    event = CanonicalEvent(
        "Consultation", datetime(2027, 6, 7, 9, tzinfo=NEW_YORK),
        datetime(2027, 6, 7, 10, 30, tzinfo=NEW_YORK), description="Bring the forms\nthanks",
        location="Room 1; 2nd floor", time_zone="America/New_York",
        transparency=Transparency.FREE,
    )  # fmt: skip
    created = dav.provider.create(event, "link:0", marker="calsync:conn:link")

    fetched = dav.calendar().get(created.id)
    assert fetched.event is not None and same_content(fetched.event, event)
    assert fetched.marker == "calsync:conn:link" and fetched.version == created.version
    text = raw(dav, uid_for("link:0"))
    assert "BEGIN:VTIMEZONE" in text and "TZID:America/New_York" in text
    assert "DTSTART;TZID=America/New_York:20270607T090000" in text


def test_a_retried_create_finds_the_first(dav: Setup) -> None:
    first = dav.provider.create(session(), "link:0", marker="calsync:c:link")
    again = dav.calendar().create(session(), "link:0", marker="calsync:c:link")

    assert again.id == first.id == f"{uid_for('link:0')}.ics"
    assert again.version == first.version
    assert len(dav.person_events()) == 1


def test_a_retried_create_with_other_content_hands_back_what_is_there(dav: Setup) -> None:
    dav.provider.create(session("Old title"), "link:0", marker="calsync:c:link")
    again = dav.calendar().create(session("New title"), "link:0", marker="calsync:c:link")
    assert again.event is not None and again.event.title == "Old title"  # the caller reconciles


def test_a_uid_already_present_elsewhere_is_that_event(dav: Setup) -> None:
    uid = uid_for("link:0")
    # Another client stored our UID under an href of its own choosing.
    stored = person_client(dav.server).put(
        dav.url + "somewhere-else.ics",
        event_ics(uid, T, T + timedelta(hours=1), "Copied by an app"),
        {"Content-Type": "text/calendar", "If-None-Match": "*"},
    )
    assert stored.status == 201

    found = dav.provider.create(session(), "link:0", marker="calsync:c:link")

    assert found.id == "somewhere-else.ics"
    assert found.event is not None and found.event.title == "Copied by an app"
    assert len(dav.person_events()) == 1


def test_a_concurrent_edit_makes_if_match_fail(dav: Setup) -> None:
    created = dav.provider.create(session(), "link:0", marker="calsync:c:link")
    person = dav.person_event(uid_for("link:0"))
    person.icalendar_component["LOCATION"] = "Moved by the person"
    person.save()

    with pytest.raises(PreconditionFailed):
        dav.provider.update(created.id, session("Ours"), created.version)
    with pytest.raises(PreconditionFailed):
        dav.provider.delete(created.id, created.version)
    current = dav.provider.get(created.id)
    assert current.event is not None and current.event.location == "Moved by the person"
    assert current.event.title == "Session"


def test_update_of_a_missing_event_and_delete_of_a_missing_one(dav: Setup) -> None:
    with pytest.raises(NotFound):
        dav.provider.update("nothing-here.ics", session(), None)
    with pytest.raises(NotFound):
        dav.provider.update("nothing-here.ics", session(), '"some-etag"')
    dav.provider.delete("nothing-here.ics", '"some-etag"')
    dav.provider.delete("nothing-here.ics", None)
    assert dav.provider.get("nothing-here.ics").deleted


def test_our_updates_keep_what_the_person_added_and_do_not_bump_sequence(dav: Setup) -> None:
    dav.add(event_ics("theirs", T, T + timedelta(hours=1), "Theirs", extra=[
        "SEQUENCE:3", "CATEGORIES:Work", "BEGIN:VALARM", "ACTION:DISPLAY",
        "DESCRIPTION:Reminder", "TRIGGER:-PT15M", "END:VALARM",
    ]))  # fmt: skip
    [theirs] = dav.provider.list_changes(None).changes
    sequence = int(dav.person_event("theirs").icalendar_component["SEQUENCE"])

    moved = CanonicalEvent("Theirs", T + timedelta(hours=2), T + timedelta(hours=3))
    updated = dav.provider.update(theirs.id, moved, theirs.version)

    component = dav.person_event("theirs").icalendar_component
    assert int(component["SEQUENCE"]) == sequence >= 3
    assert component.walk("VALARM") and "CATEGORIES" in component
    assert component.start == T + timedelta(hours=2)
    assert updated.marker is None  # still the person's event


def test_cancelling_and_uncancelling_an_event(dav: Setup) -> None:
    created = dav.provider.create(session(), "link:0", marker="calsync:c:link")
    cancelled = CanonicalEvent("Session", T, T + timedelta(hours=1), status=EventStatus.CANCELLED)
    after = dav.provider.update(created.id, cancelled, created.version)
    assert after.event is not None and after.event.status is EventStatus.CANCELLED
    assert "STATUS:CANCELLED" in raw(dav, uid_for("link:0"))
    back = dav.provider.update(created.id, session(), after.version)
    assert back.event is not None and back.event.status is EventStatus.CONFIRMED


def test_a_read_only_calendar_is_never_written(dav: Setup) -> None:
    dav.add(event_ics("theirs", T, T + timedelta(hours=1)))
    read_only = dav.account.calendar(CalendarInfo(dav.url, read_only=True), dav.provider.window)
    [theirs] = read_only.list_changes(None).changes
    before = dav.counter.calls

    for write in (
        lambda: read_only.create(session(), "k:0", marker="calsync:c:k"),
        lambda: read_only.update(theirs.id, session(), theirs.version),
        lambda: read_only.delete(theirs.id, theirs.version),
    ):
        with pytest.raises(PermanentError) as refused:
            write()
        assert refused.value.reason is PermanentReason.FORBIDDEN
    assert dav.counter.calls == before  # refused without a request
    assert len(dav.person_events()) == 1


def test_every_request_is_announced_before_it_is_sent(dav: Setup) -> None:
    dav.provider.list_changes(None)
    before = dav.counter.calls
    created = dav.provider.create(session(), "k:0", marker="calsync:c:k")
    assert dav.counter.calls == before + 1  # one PUT: the body it sent is what it returns
    dav.provider.update(created.id, session("Renamed"), created.version)
    assert dav.counter.calls == before + 2  # one PUT: the body is known, If-Match guards


def test_events_of_a_calendar_do_not_leak_into_another(dav: Setup) -> None:
    other = new_calendar(dav.server)
    provider = dav.account.calendar(CalendarInfo(str(other.url)), dav.provider.window)
    provider.create(session(), "k:0", marker="calsync:c:k")
    assert dav.provider.list_changes(None).changes == ()
    assert len(provider.list_changes(None).changes) == 1


def test_zones_a_dtstart_cannot_carry_read_back(dav: Setup) -> None:
    all_day = CanonicalEvent("Fair", date(2027, 9, 1), date(2027, 9, 3), all_day=True,
                             time_zone="Europe/Paris")  # fmt: skip
    utc = CanonicalEvent("Call", T, T + timedelta(hours=1), time_zone="UTC")
    for n, event in enumerate((all_day, utc)):
        created = dav.provider.create(event, f"k{n}:0", marker=f"calsync:c:k{n}")
        fetched = dav.calendar().get(created.id).event
        assert fetched is not None and same_content(fetched, event)
        assert fetched.time_zone == event.time_zone


def test_an_event_the_server_cannot_take_is_an_invalid_event(dav: Setup) -> None:
    broken = CanonicalEvent("Series", T, T + timedelta(hours=1),
                            recurrence=Recurrence(rule="EVERY OTHER TUESDAY"))  # fmt: skip
    with pytest.raises(PermanentError) as refused:
        dav.provider.create(broken, "k:0", marker="calsync:c:k")
    assert refused.value.reason is PermanentReason.INVALID_EVENT
    assert dav.person_events() == []
