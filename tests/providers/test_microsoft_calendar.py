"""The Microsoft provider (O365 over HTTP) against the Graph sandbox on loopback: calendars,
delta sync, idempotent and conditional writes, markers, throttling and server errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from harness.microsoft import signed_in

from providers.base import CalendarInfo, CalendarProvider, SyncWindow
from providers.errors import (
    CursorExpired,
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    RateLimited,
    TransientError,
)
from providers.microsoft.account import MicrosoftAccount
from providers.microsoft.calendar import MicrosoftCalendar
from providers.microsoft.events import MARKER_PROP
from sandbox.graph.harness import GraphHarness, graph_harness
from sync.event import CanonicalEvent, Recurrence, Transparency
from sync.snapshot import RemoteEvent

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = SyncWindow(datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))


@dataclass
class Mailbox:
    graph: GraphHarness
    account: MicrosoftAccount
    calendar: MicrosoftCalendar
    calls: list[str] = field(default_factory=list)

    @property
    def user(self) -> str:
        return self.graph.user.id

    def seed(self, subject: str, day: int, hour: int = 9, **extra: Any) -> str:
        """An event the mailbox owner makes in Outlook."""
        body = {"subject": subject, "start": utc(day, hour), "end": utc(day, hour + 1), **extra}
        instance, _ = self.graph.state.create_event(self.user, body, check_access=False)
        return instance.id

    def raw(self, event_id: str, **params: str) -> dict[str, Any]:
        token = self.account.tokens.access_token
        with httpx.Client(base_url=f"{self.graph.api.base_url}/v1.0", trust_env=False) as http:
            answer = http.get(
                f"/me/events/{event_id}",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            )
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body


def utc(day: int, hour: int, month: int = 3) -> dict[str, str]:
    return {"dateTime": f"2030-{month:02d}-{day:02d}T{hour:02d}:00:00", "timeZone": "UTC"}


def berlin_event(title: str, day: int, hour: int = 9, **extra: Any) -> CanonicalEvent:
    start = datetime(2030, 3, day, hour, tzinfo=BERLIN)
    return CanonicalEvent(
        title, start, start + timedelta(hours=1), time_zone="Europe/Berlin", **extra
    )


@pytest.fixture
def box() -> Iterator[Mailbox]:
    with graph_harness() as graph:
        calls: list[str] = []
        account = signed_in(graph, before_request=lambda: calls.append("request"))
        primary = next(c for c in account.list_calendars() if c.primary)
        calendar = account.calendar(primary, WINDOW, page_size=2)
        calls.clear()
        yield Mailbox(graph, account, calendar, calls)
        account.close()


def live(changes: tuple[RemoteEvent, ...]) -> dict[str, RemoteEvent]:
    return {r.id: r for r in changes if r.event is not None}


# -- calendars -----------------------------------------------------------------------------------


def test_list_calendars_flags_read_only_and_primary(box: Mailbox) -> None:
    holidays = box.graph.state.add_calendar(box.user, "Holidays", can_edit=False)
    work = box.graph.state.add_calendar(box.user, "Work")
    found = {c.name: c for c in box.account.list_calendars()}
    assert set(found) == {"Calendar", "Holidays", "Work"}
    assert found["Calendar"].primary and not found["Calendar"].read_only
    assert found["Holidays"].read_only and not found["Holidays"].primary
    assert found["Work"].remote_id == work.id and not found["Work"].read_only
    assert found["Holidays"].remote_id == holidays.id
    assert isinstance(box.calendar, CalendarProvider)


def test_create_calendar_makes_a_writable_calendar_once(box: Mailbox) -> None:
    made = box.account.create_calendar("Wix Bookings")
    assert (made.name, made.read_only, made.primary) == ("Wix Bookings", False, False)
    assert box.graph.state.calendar(box.user, made.remote_id).name == "Wix Bookings"
    # A create whose answer was lost, sent again: Graph answers 409, the same calendar counts.
    assert box.account.create_calendar("Wix Bookings").remote_id == made.remote_id
    assert [c.name for c in box.account.list_calendars()] == ["Calendar", "Wix Bookings"]
    dedicated = box.account.calendar(made, WINDOW)
    written = dedicated.create(berlin_event("Massage", 4), "key-1", marker="calsync:c:l1")
    assert [e.id for e in box.graph.state.list_events(box.user, made.remote_id)] == [written.id]


def test_read_only_calendar_refuses_writes_without_a_request(box: Mailbox) -> None:
    holidays = box.graph.state.add_calendar(box.user, "Holidays", can_edit=False)
    calendar = box.account.calendar(CalendarInfo(holidays.id, read_only=True), WINDOW)
    for write in (
        lambda: calendar.create(berlin_event("x", 4), "k", marker="calsync:c:l"),
        lambda: calendar.update("some-id", berlin_event("x", 4), None),
        lambda: calendar.delete("some-id", None),
    ):
        with pytest.raises(PermanentError) as refused:
            write()
        assert refused.value.reason is PermanentReason.FORBIDDEN
    assert box.calls == []


def test_a_calendar_graph_refuses_to_write_to_is_forbidden(box: Mailbox) -> None:
    holidays = box.graph.state.add_calendar(box.user, "Holidays", can_edit=False)
    calendar = box.account.calendar(CalendarInfo(holidays.id), WINDOW)  # not flagged: Graph says no
    with pytest.raises(PermanentError) as refused:
        calendar.create(berlin_event("x", 4), "k", marker="calsync:c:l")
    assert refused.value.reason is PermanentReason.FORBIDDEN


# -- delta ---------------------------------------------------------------------------------------


def test_full_listing_follows_pages_and_marks_our_events(box: Mailbox) -> None:
    foreign = [box.seed(f"dentist {i}", 2 + i) for i in range(4)]
    box.graph.state.create_event(
        box.user,
        {"subject": "May", "start": utc(5, 9, 5), "end": utc(5, 10, 5)},
        check_access=False,
    )
    ours = box.calendar.create(berlin_event("Haircut", 10), "key-1", marker="calsync:c1:l1")
    box.calls.clear()
    page = box.calendar.list_changes(None)
    assert page.complete
    listed = live(page.changes)
    assert set(listed) == {*foreign, ours.id}
    assert len(box.calls) >= 4  # 5 events at 2 a page: several delta pages, then our events
    assert listed[ours.id].marker == "calsync:c1:l1"
    assert all(listed[i].marker is None for i in foreign)
    haircut = listed[ours.id].event
    assert haircut is not None and haircut.time_zone == "Europe/Berlin"
    assert haircut.start == datetime(2030, 3, 10, 9, tzinfo=BERLIN)
    dentist = listed[foreign[0]].event
    assert dentist is not None and dentist.title == "dentist 0"
    assert listed[foreign[0]].version == box.raw(foreign[0])["@odata.etag"]


def test_incremental_listing_reports_changes_and_removals(box: Mailbox) -> None:
    kept, doomed, moved = box.seed("kept", 3), box.seed("doomed", 4), box.seed("moved", 5)
    ours = box.calendar.create(berlin_event("ours", 6), "key-1", marker="calsync:c1:l1")
    first = box.calendar.list_changes(None)

    state = box.graph.state
    state.update_event(box.user, kept, {"subject": "kept, renamed"}, check_access=False)
    state.delete_event(box.user, doomed, check_access=False)
    state.update_event(
        box.user, moved, {"start": utc(5, 9, 6), "end": utc(5, 10, 6)}, check_access=False
    )
    state.update_event(
        box.user, ours.id, {"start": utc(5, 9, 7), "end": utc(5, 10, 7)}, check_access=False
    )
    added = box.seed("added", 20)

    page = box.calendar.list_changes(first.next_cursor)
    assert not page.complete
    by_id = {r.id: r for r in page.changes}
    renamed = by_id[kept].event
    assert renamed is not None and renamed.title == "kept, renamed"
    assert by_id[added].event is not None
    assert by_id[doomed].deleted and by_id[moved].deleted  # deleted; moved out of the window
    # Ours moved out of the window too, but it exists: listed as it is, never as a deletion.
    assert by_id[ours.id].event is not None and by_id[ours.id].marker == "calsync:c1:l1"

    quiet = box.calendar.list_changes(page.next_cursor)
    assert quiet.changes == ()


@pytest.mark.parametrize("expiry", ["gone", "syncStateNotFound"])
def test_expired_delta_token_raises_cursor_expired(box: Mailbox, expiry: str) -> None:
    box.seed("one", 3)
    cursor = box.calendar.list_changes(None).next_cursor
    box.graph.state.settings.delta_expiry = expiry
    assert box.graph.state.expire_delta_tokens() >= 1
    with pytest.raises(CursorExpired):
        box.calendar.list_changes(cursor)
    assert [r.event.title for r in box.calendar.list_changes(None).changes if r.event] == ["one"]


def test_a_cursor_that_is_not_ours_or_points_elsewhere_is_expired(box: Mailbox) -> None:
    with pytest.raises(CursorExpired):
        box.calendar.list_changes("not json")
    foreign = '{"delta": "https://evil.example/v1.0/me/calendarView/delta?$deltatoken=x"}'
    with pytest.raises(CursorExpired):
        box.calendar.list_changes(foreign)
    assert box.calls == []  # the bearer token went nowhere


def test_other_calendars_sync_by_their_own_delta(box: Mailbox) -> None:
    work = box.graph.state.add_calendar(box.user, "Work")
    box.seed("in primary", 3)
    box.graph.state.create_event(
        box.user,
        {"subject": "in work", "start": utc(4, 9), "end": utc(4, 10)},
        calendar_id=work.id,
        check_access=False,
    )
    calendar = box.account.calendar(CalendarInfo(work.id), WINDOW)
    page = calendar.list_changes(None)
    assert [r.event.title for r in page.changes if r.event] == ["in work"]
    made = calendar.create(berlin_event("ours in work", 5), "k-w", marker="calsync:c1:w")
    assert box.graph.state.get_instance(box.user, made.id).record.calendar_id == work.id
    later = calendar.list_changes(page.next_cursor)
    assert [r.id for r in later.changes] == [made.id]


def test_list_window_lists_what_overlaps_a_span(box: Mailbox) -> None:
    early, late = box.seed("early", 3), box.seed("late", 20)
    ours = box.calendar.create(berlin_event("ours", 21), "k", marker="calsync:c1:l1")
    span = box.calendar.list_window(
        datetime(2030, 3, 15, tzinfo=UTC), datetime(2030, 3, 25, tzinfo=UTC)
    )
    assert {r.id: r.marker for r in span} == {late: None, ours.id: "calsync:c1:l1"}
    assert early not in {r.id for r in span}


def test_deleted_calendar_is_calendar_deleted(box: Mailbox) -> None:
    gone = box.account.calendar(CalendarInfo("AAMkAGnoSuchCalendarAAA="), WINDOW)
    with pytest.raises(PermanentError) as error:
        gone.list_changes(None)
    assert error.value.reason is PermanentReason.CALENDAR_DELETED


# -- writes --------------------------------------------------------------------------------------


def test_create_round_trips_content_and_marker(box: Mailbox) -> None:
    event = berlin_event(
        "Colour",
        12,
        14,
        description="Bring photos\nof the look",
        location="Salon 1",
        transparency=Transparency.FREE,
    )
    made = box.calendar.create(event, "key-1", marker="calsync:c1:l1")
    assert made.event == event and made.marker == "calsync:c1:l1"
    assert made.version == box.raw(made.id)["@odata.etag"]
    fetched = box.calendar.get(made.id)
    assert fetched.event == event and fetched.marker == "calsync:c1:l1"
    expand = f"singleValueExtendedProperties($filter=id eq '{MARKER_PROP}')"
    raw = box.raw(made.id, **{"$expand": expand})
    assert raw["singleValueExtendedProperties"] == [{"id": MARKER_PROP, "value": "calsync:c1:l1"}]
    assert raw["start"] == {"dateTime": "2030-03-12T13:00:00.0000000", "timeZone": "UTC"}
    assert raw["originalStartTimeZone"] == "W. Europe Standard Time"


def test_retried_create_with_the_same_key_makes_one_event(box: Mailbox) -> None:
    event = berlin_event("Booking 42", 5, 14)
    first = box.calendar.create(event, "link-42", marker="calsync:c1:l42")
    again = box.calendar.create(event, "link-42", marker="calsync:c1:l42")
    other = box.calendar.create(event, "link-43", marker="calsync:c1:l43")
    assert again.id == first.id and other.id != first.id
    assert len(box.graph.state.list_events(box.user, None)) == 2
    assert box.graph.state.get_instance(box.user, first.id).record.transaction_id


def test_retried_create_answered_409_finds_the_first_event_by_marker(box: Mailbox) -> None:
    box.graph.state.settings.duplicate_transaction = "conflict"
    first = box.calendar.create(
        berlin_event("Booking 42", 5, 14), "link-42", marker="calsync:c1:l42"
    )
    again = box.calendar.create(
        berlin_event("Booking 42", 5, 14), "link-42", marker="calsync:c1:l42"
    )
    assert again.id == first.id and again.marker == "calsync:c1:l42"
    assert again.event == first.event
    assert len(box.graph.state.list_events(box.user, None)) == 1


def test_update_and_delete_honour_the_version(box: Mailbox) -> None:
    made = box.calendar.create(berlin_event("Cut", 6), "key-1", marker="calsync:c1:l1")
    box.graph.state.update_event(box.user, made.id, {"subject": "Cut (owner)"}, check_access=False)
    with pytest.raises(PreconditionFailed):
        box.calendar.update(made.id, berlin_event("Cut (calsync)", 6), made.version)
    with pytest.raises(PreconditionFailed):
        box.calendar.delete(made.id, made.version)
    assert box.raw(made.id)["subject"] == "Cut (owner)"

    current = box.calendar.get(made.id)
    updated = box.calendar.update(made.id, berlin_event("Cut (calsync)", 7), current.version)
    assert updated.event == berlin_event("Cut (calsync)", 7)
    assert updated.version != current.version and updated.marker == "calsync:c1:l1"
    assert box.calendar.get(made.id).event == updated.event


def test_graph_answers_412_to_a_stale_if_match(box: Mailbox) -> None:
    made = box.calendar.create(berlin_event("Cut", 6), "key-1", marker="calsync:c1:l1")
    stale = made.version or ""
    box.graph.state.update_event(box.user, made.id, {"subject": "x"}, check_access=False)
    url = box.calendar.writer.event_url(made.id)
    with pytest.raises(PreconditionFailed):  # straight to Graph, no pre-check of ours
        box.account.client.send("PATCH", url, body={"subject": "y"}, headers={"If-Match": stale})


def test_delete_twice_and_get_after_delete(box: Mailbox) -> None:
    made = box.calendar.create(berlin_event("Cut", 6), "key-1", marker="calsync:c1:l1")
    box.calendar.delete(made.id, made.version)
    box.calendar.delete(made.id, made.version)  # 404: already done
    assert box.calendar.get(made.id).deleted
    with pytest.raises(NotFound):
        box.calendar.update(made.id, berlin_event("Cut", 6), None)


def test_update_of_a_foreign_event_leaves_its_properties_alone(box: Mailbox) -> None:
    theirs = box.seed("dentist", 8)
    current = box.calendar.get(theirs)
    assert current.marker is None and current.event is not None
    moved = replace(
        current.event,
        start=current.event.start + timedelta(hours=2),
        end=current.event.end + timedelta(hours=2),
    )
    updated = box.calendar.update(theirs, moved, current.version)
    assert updated.event == moved and updated.marker is None
    assert box.graph.state.get_instance(box.user, theirs).ext_props == {}


def test_unrepresentable_rule_is_an_invalid_event(box: Mailbox) -> None:
    event = berlin_event("odd", 4, recurrence=Recurrence(rule="FREQ=HOURLY;COUNT=3"))
    with pytest.raises(PermanentError) as refused:
        box.calendar.create(event, "k", marker="calsync:c1:l")
    assert refused.value.reason is PermanentReason.INVALID_EVENT
    assert box.calls == []


# -- throttling and errors -----------------------------------------------------------------------


def test_a_429_storm_is_rate_limited_with_retry_after_and_no_hidden_retries(box: Mailbox) -> None:
    box.graph.state.faults.throttle(None, share=1.0, retry_after=7)
    for call in (
        lambda: box.calendar.list_changes(None),
        lambda: box.calendar.create(berlin_event("x", 4), "k", marker="calsync:c:l"),
        lambda: box.calendar.get("AAMkAGsomething"),
        lambda: box.calendar.delete("AAMkAGsomething", None),
    ):
        box.calls.clear()
        injected = box.graph.state.faults.injected.get(429, 0)
        with pytest.raises(RateLimited) as limited:
            call()
        assert limited.value.retry_after == 7
        assert len(box.calls) == 1  # one request: O365's urllib3 retries are off
        assert box.graph.state.faults.injected[429] == injected + 1
    box.graph.state.faults.clear()
    assert box.graph.state.list_events(box.user, None) == []


@pytest.mark.parametrize("status", [500, 503, 504])
def test_server_errors_are_transient(box: Mailbox, status: int) -> None:
    box.graph.state.faults.fail(1, status=status, retry_after=2)
    with pytest.raises(TransientError) as failed:
        box.calendar.create(berlin_event("x", 4), "k", marker="calsync:c:l")
    assert not isinstance(failed.value, RateLimited)
    assert failed.value.retry_after == 2
    made = box.calendar.create(berlin_event("x", 4), "k", marker="calsync:c:l")
    assert box.calendar.get(made.id).event == berlin_event("x", 4)


def test_connection_refused_is_transient(box: Mailbox) -> None:
    box.graph.api.stop()
    with pytest.raises(TransientError):
        box.calendar.list_changes(None)
