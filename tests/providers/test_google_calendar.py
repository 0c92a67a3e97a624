"""`GoogleCalendar` as a `CalendarProvider`: the real google-api-python-client over HTTP against
the Google sandbox. Changes "in Google's own UI" are made on the sandbox state directly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness.google import (
    BASE,
    CLIENT_ID,
    CLIENT_SECRET,
    USER,
    WINDOW,
    Calls,
    GoogleWorld,
    timed,
)

from providers.base import CalendarInfo, CalendarProvider, ChangePage
from providers.errors import (
    CursorExpired,
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    RateLimited,
    TransientError,
)
from providers.google.account import GoogleAccount
from providers.google.calendar import GoogleCalendar
from providers.google.events import event_id_for
from sync.event import CanonicalEvent, EventStatus, Recurrence, Transparency
from sync.snapshot import RemoteEvent

BERLIN = "Europe/Berlin"
MARKER = "calsync:conn-1:link-1"


@pytest.fixture(autouse=True)
def fresh(world: GoogleWorld) -> None:
    world.reset()


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def calendar(world: GoogleWorld, calls: Calls) -> GoogleCalendar:
    return world.calendar(calls=calls)


def stamp(moment: datetime) -> str:
    """A UTC time as Google's instance ids and EXDATEs write it."""
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def session(title: str = "Haircut", start: datetime = BASE, **fields: Any) -> CanonicalEvent:
    return CanonicalEvent(title, start, start + timedelta(hours=1), time_zone=BERLIN, **fields)


def by_id(page: ChangePage) -> dict[str, RemoteEvent]:
    return {item.id: item for item in page.changes}


def foreign(world: GoogleWorld, summary: str, start: datetime, **extra: Any) -> str:
    """An event someone made in Google Calendar itself."""
    return str(world.state.insert_event(USER, {"summary": summary, **timed(start), **extra})["id"])


# -- calendars -------------------------------------------------------------------------------


def test_calendars_carry_a_read_only_flag_from_the_access_role(world: GoogleWorld) -> None:
    state = world.state
    state.add_account("bob@example.com")
    roles = {"reader": True, "freeBusyReader": True, "writer": False}
    shared = {}
    for role in roles:
        shared[role] = state.add_calendar("bob@example.com", summary=f"Bob {role}")
        state.share_calendar(shared[role], USER, role)
    infos = {info.remote_id: info for info in world.account().list_calendars()}
    assert infos[USER].primary and not infos[USER].read_only
    assert infos[USER].time_zone == BERLIN
    for role, read_only in roles.items():
        info = infos[shared[role]]
        assert info.read_only is read_only and info.name == f"Bob {role}" and not info.primary
    assert isinstance(world.calendar(), CalendarProvider)


# -- listing ---------------------------------------------------------------------------------


def test_full_listing_follows_pages_then_incremental_lists_changes(
    world: GoogleWorld, calls: Calls
) -> None:
    ids = [foreign(world, f"busy {i}", BASE + timedelta(days=i)) for i in range(5)]
    outside = foreign(world, "next year", BASE + timedelta(days=365))
    calendar = world.calendar(calls=calls, page_size=2)

    full = calendar.list_changes(None)
    assert full.complete and sorted(by_id(full)) == sorted(ids)
    assert outside not in by_id(full)
    assert calls.count == 3 + 3  # both streams list 5 items in pages of 2
    assert by_id(full)[ids[0]].event == CanonicalEvent(
        "busy 0",
        BASE,
        BASE + timedelta(hours=1),
        time_zone=BERLIN,
    )
    assert by_id(full)[ids[0]].version and by_id(full)[ids[0]].marker is None

    state = world.state
    state.patch_event(USER, ids[0], {"summary": "moved", **timed(BASE + timedelta(hours=2))})
    state.delete_event(USER, ids[1])
    new = foreign(world, "new", BASE + timedelta(days=9))
    changes = calendar.list_changes(full.next_cursor)
    assert not changes.complete
    found = by_id(changes)
    assert set(found) == {ids[0], ids[1], new}
    moved = found[ids[0]].event
    assert moved is not None and moved.title == "moved"
    assert moved.start == BASE + timedelta(hours=2)
    assert found[ids[1]].deleted and found[new].event is not None

    quiet = calendar.list_changes(changes.next_cursor)
    assert quiet.changes == () and not quiet.complete


def test_an_expired_or_foreign_cursor_raises_cursor_expired(
    world: GoogleWorld, calendar: GoogleCalendar
) -> None:
    cursor = calendar.list_changes(None).next_cursor
    world.state.expire_sync_tokens(USER)
    with pytest.raises(CursorExpired):
        calendar.list_changes(cursor)

    cursor = calendar.list_changes(None).next_cursor
    world.state.faults.expire_next_sync_token()
    with pytest.raises(CursorExpired):
        calendar.list_changes(cursor)
    for bogus in ("not json", '{"series": "x"}', "[]"):
        with pytest.raises(CursorExpired):
            calendar.list_changes(bogus)


def test_list_window_lists_live_events_of_another_span(
    world: GoogleWorld, calendar: GoogleCalendar
) -> None:
    early = foreign(world, "early", BASE)
    late = foreign(world, "late", BASE + timedelta(days=60))
    listed = calendar.list_window(BASE + timedelta(days=50), BASE + timedelta(days=70))
    assert [item.id for item in listed] == [late]
    assert early in {item.id for item in calendar.list_window(WINDOW.start, WINDOW.end)}


def test_all_day_and_free_events_map_both_ways(calendar: GoogleCalendar) -> None:
    day_off = CanonicalEvent(
        "Closed",
        BASE.date() + timedelta(days=6),
        BASE.date() + timedelta(days=8),
        all_day=True,
        transparency=Transparency.FREE,
        description="two days",
        location="Shop",
    )
    created = calendar.create(day_off, "all-day", marker=MARKER)
    assert created.event == day_off
    assert calendar.get(created.id).event == day_off
    assert by_id(calendar.list_changes(None))[created.id].event == day_off


# -- writes ----------------------------------------------------------------------------------


def test_create_is_idempotent_and_the_marker_round_trips(
    world: GoogleWorld, calendar: GoogleCalendar
) -> None:
    first = calendar.create(session(), "wix:session-1", marker=MARKER)
    again = calendar.create(session(), "wix:session-1", marker=MARKER)
    assert first.id == again.id == event_id_for("wix:session-1")
    assert first.marker == again.marker == MARKER
    assert [e["id"] for e in world.state.stored_events(USER)] == [first.id]
    assert first.event == session()

    other = calendar.create(session("Colour"), "wix:session-2", marker="calsync:conn-1:link-2")
    assert other.id != first.id
    listed = by_id(calendar.list_changes(None))
    assert listed[first.id].marker == MARKER
    assert listed[other.id].marker == "calsync:conn-1:link-2"
    assert calendar.get(first.id).marker == MARKER


def test_a_retried_create_of_a_deleted_event_brings_it_back(calendar: GoogleCalendar) -> None:
    first = calendar.create(session(), "wix:session-1", marker=MARKER)
    calendar.delete(first.id, first.version)
    assert calendar.get(first.id).deleted
    again = calendar.create(session("Haircut again"), "wix:session-1", marker=MARKER)
    assert again.id == first.id and again.event == session("Haircut again")
    assert again.marker == MARKER


def test_update_and_delete_are_conditional_on_the_etag(
    world: GoogleWorld, calendar: GoogleCalendar
) -> None:
    created = calendar.create(session(), "k", marker=MARKER)
    world.state.patch_event(USER, created.id, {"colorId": "5"})  # the owner colours it
    with pytest.raises(PreconditionFailed):
        calendar.update(created.id, session("Colour"), created.version)

    current = calendar.get(created.id)
    updated = calendar.update(
        created.id, session("Colour", BASE + timedelta(hours=3)), current.version
    )
    assert updated.version != current.version and updated.marker == MARKER
    assert updated.event == session("Colour", BASE + timedelta(hours=3))
    stored = world.state.get_event(USER, created.id)
    assert stored["colorId"] == "5"  # a patch: the owner's own fields stay

    with pytest.raises(PreconditionFailed):
        calendar.delete(created.id, current.version)
    calendar.delete(created.id, updated.version)
    calendar.delete(created.id, updated.version)  # 410: already gone, done
    calendar.delete("neverexisted1", None)  # 404: done
    assert calendar.get(created.id).deleted
    with pytest.raises(NotFound):
        calendar.update(created.id, session(), None)  # never revived by an update
    with pytest.raises(NotFound):
        calendar.get("neverexisted1")


def test_read_only_calendars_refuse_writes_without_a_request(
    world: GoogleWorld, calls: Calls
) -> None:
    calendar = world.calendar(calls=calls, read_only=True)
    writes = [
        lambda: calendar.create(session(), "k", marker=MARKER),
        lambda: calendar.update("abcdef", session(), '"1"'),
        lambda: calendar.delete("abcdef", '"1"'),
    ]
    for write in writes:
        with pytest.raises(PermanentError) as caught:
            write()
        assert caught.value.reason is PermanentReason.FORBIDDEN
    assert calls.count == 0


# -- recurrence ------------------------------------------------------------------------------


def test_an_exported_series_with_exceptions_reads_back_in_series_form(
    world: GoogleWorld, calendar: GoogleCalendar
) -> None:
    weekly = session("Yoga", recurrence=Recurrence(rule="FREQ=WEEKLY;COUNT=4"))
    series = calendar.create(weekly, "wix:series", marker=MARKER)
    assert series.event == weekly
    cursor = calendar.list_changes(None).next_cursor
    second, third = BASE + timedelta(days=7), BASE + timedelta(days=14)

    moved = session(
        "Yoga (moved)",
        second + timedelta(hours=2),
        recurrence=Recurrence(series_id=series.id, original_start=second),
    )
    moved_copy = calendar.create(moved, "wix:exception-1", marker="calsync:conn-1:link-2")
    cancelled = session(
        "Yoga",
        third,
        status=EventStatus.CANCELLED,
        recurrence=Recurrence(series_id=series.id, original_start=third),
    )
    cancelled_copy = calendar.create(cancelled, "wix:exception-2", marker="calsync:conn-1:link-3")
    assert moved_copy.id == f"{series.id}_{stamp(second)}"
    assert moved_copy.event == moved and cancelled_copy.event == cancelled
    again = calendar.create(moved, "wix:exception-1", marker="calsync:conn-1:link-2")
    assert again.id == moved_copy.id  # writing an occurrence is idempotent by itself

    full = by_id(calendar.list_changes(None))
    assert set(full) == {series.id, moved_copy.id, cancelled_copy.id}  # not expanded
    assert full[series.id].event == weekly
    assert full[moved_copy.id].event == moved
    assert full[moved_copy.id].marker == "calsync:conn-1:link-2"
    assert full[cancelled_copy.id].event == cancelled

    incremental = by_id(calendar.list_changes(cursor))
    assert set(incremental) == {moved_copy.id, cancelled_copy.id}
    assert incremental[cancelled_copy.id].event == cancelled  # a cancelled occurrence, not gone
    assert calendar.get(moved_copy.id).event == moved


def test_an_occurrence_of_our_series_moved_in_google_stays_in_series_form(
    world: GoogleWorld, calendar: GoogleCalendar
) -> None:
    series = calendar.create(
        session("Yoga", recurrence=Recurrence(rule="FREQ=DAILY;COUNT=3")), "s", marker=MARKER
    )
    cursor = calendar.list_changes(None).next_cursor
    occurrence = f"{series.id}_{stamp(BASE + timedelta(days=1))}"
    world.state.patch_event(USER, occurrence, timed(BASE + timedelta(days=1, hours=5)))
    [change] = calendar.list_changes(cursor).changes
    assert change.id == occurrence and change.marker == MARKER  # inherited from the series
    assert change.event is not None and change.event.recurrence == Recurrence(
        series_id=series.id, original_start=BASE + timedelta(days=1)
    )

    cursor = calendar.list_changes(None).next_cursor
    calendar.delete(series.id, None)
    changes = by_id(calendar.list_changes(cursor))
    assert set(changes) == {series.id, occurrence}
    assert all(item.deleted for item in changes.values())  # the exception went with it


def test_a_foreign_series_is_read_expanded_with_its_exceptions_applied(
    world: GoogleWorld, calendar: GoogleCalendar
) -> None:
    state = world.state
    skipped = f"EXDATE:{stamp(BASE + timedelta(days=2))}"
    series = foreign(world, "Standup", BASE, recurrence=["RRULE:FREQ=DAILY;COUNT=5", skipped])
    occurrence = [f"{series}_{stamp(BASE + timedelta(days=d))}" for d in range(5)]
    state.patch_event(
        USER,
        occurrence[1],
        {"summary": "Standup (late)", **timed(BASE + timedelta(days=1, hours=6))},
    )
    state.delete_event(USER, occurrence[3])

    full = calendar.list_changes(None)
    found = by_id(full)
    assert set(found) == {occurrence[0], occurrence[1], occurrence[4]}  # EXDATE, cancelled gone
    late = found[occurrence[1]].event
    assert late is not None and late.title == "Standup (late)"
    assert late.start == BASE + timedelta(days=1, hours=6)
    assert all(item.event and item.event.recurrence is None for item in found.values())
    assert calendar.get(occurrence[0]).event == found[occurrence[0]].event

    state.delete_event(USER, occurrence[4])
    state.patch_event(USER, occurrence[0], {"summary": "Standup (first)"})
    changes = by_id(calendar.list_changes(full.next_cursor))
    assert changes[occurrence[4]].deleted
    first = changes[occurrence[0]].event
    assert first is not None and first.title == "Standup (first)" and first.recurrence is None

    cursor = calendar.list_changes(None).next_cursor
    state.delete_event(USER, series)
    changes = by_id(calendar.list_changes(cursor))
    assert {occurrence[0], occurrence[1]} <= set(changes)
    assert all(item.deleted for item in changes.values())


def test_writes_to_a_foreign_occurrence_change_only_that_occurrence(
    world: GoogleWorld, calendar: GoogleCalendar
) -> None:
    series = foreign(world, "Standup", BASE, recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    first, second = (f"{series}_{stamp(BASE + timedelta(days=d))}" for d in range(2))
    current = calendar.get(first)
    assert current.event is not None
    moved = replace(current.event, title="Standup (moved)", start=BASE + timedelta(hours=1),
                    end=BASE + timedelta(hours=2))  # fmt: skip
    updated = calendar.update(first, moved, current.version)
    assert updated.id == first and updated.event == moved
    calendar.delete(second, calendar.get(second).version)
    listed = by_id(calendar.list_changes(None))
    assert listed[first].event == moved and second not in listed
    assert f"{series}_{stamp(BASE + timedelta(days=2))}" in listed


def test_incremental_listing_keeps_far_occurrences_of_a_changed_series_out(
    world: GoogleWorld, calendar: GoogleCalendar
) -> None:
    series = foreign(world, "Daily", BASE, recurrence=["RRULE:FREQ=DAILY"])  # no end
    full = calendar.list_changes(None)
    in_window = {item.id for item in full.changes}
    assert len(in_window) == 28  # the window ends four weeks after the first day
    world.state.patch_event(USER, series, {"summary": "Daily sync"})
    changes = calendar.list_changes(full.next_cursor)
    assert {item.id for item in changes.changes} == in_window  # not two years of them
    assert all(item.event and item.event.title == "Daily sync" for item in changes.changes)


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [(403, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (429, "rateLimitExceeded")],
)
def test_rate_limits_raise_rate_limited_with_retry_after(
    world: GoogleWorld, calendar: GoogleCalendar, status: int, reason: str
) -> None:
    world.state.faults.rate_limit(1, status=status, reason=reason, retry_after=7)
    with pytest.raises(RateLimited) as caught:
        calendar.list_changes(None)
    assert caught.value.retry_after == 7
    world.state.faults.rate_limit(1, status=status, reason=reason, match="POST")
    with pytest.raises(RateLimited) as caught:
        calendar.create(session(), "k", marker=MARKER)
    assert caught.value.retry_after is None
    assert calendar.create(session(), "k", marker=MARKER).id == event_id_for("k")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(
    world: GoogleWorld, calendar: GoogleCalendar, status: int
) -> None:
    world.state.faults.fail(1, status=status)
    with pytest.raises(TransientError) as caught:
        calendar.list_changes(None)
    assert not isinstance(caught.value, RateLimited)
    assert calendar.list_changes(None).complete


def test_refusals_are_permanent_with_their_reason(world: GoogleWorld) -> None:
    state = world.state
    state.add_account("bob@example.com")
    shared = state.add_calendar("bob@example.com", summary="Bob")
    state.share_calendar(shared, USER, "reader")
    reader = world.calendar(shared)  # not flagged read-only: Google refuses the write itself
    with pytest.raises(PermanentError) as forbidden:
        reader.create(session(), "k", marker=MARKER)
    assert forbidden.value.reason is PermanentReason.FORBIDDEN

    gone = world.calendar("deleted@group.calendar.google.com")
    with pytest.raises(PermanentError) as deleted:
        gone.list_changes(None)
    assert deleted.value.reason is PermanentReason.CALENDAR_DELETED

    bad_rule = session(recurrence=Recurrence(rule="FREQ=SOMETIMES"))
    with pytest.raises(PermanentError) as invalid:
        world.calendar().create(bad_rule, "k", marker=MARKER)
    assert invalid.value.reason is PermanentReason.INVALID_EVENT


def test_network_failures_are_transient(world: GoogleWorld) -> None:
    account = GoogleAccount(
        world.tokens(),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_url=world.token_url,
        api_base_url="http://127.0.0.1:9/calendar/v3/",  # nothing listens there
    )
    with pytest.raises(TransientError):
        account.calendar(CalendarInfo(USER), WINDOW).list_changes(None)


def test_every_request_goes_through_before_request(
    world: GoogleWorld, calendar: GoogleCalendar, calls: Calls
) -> None:
    created = calendar.create(session(), "k", marker=MARKER)
    calendar.create(session(), "k", marker=MARKER)  # 409, then a get
    calendar.update(created.id, session("x"), None)  # a get, then the patch
    assert calls.count == 1 + 2 + 2
    world.state.faults.rate_limit(1, status=429)
    with pytest.raises(RateLimited):
        calendar.get(created.id)
    assert calls.count == 6
