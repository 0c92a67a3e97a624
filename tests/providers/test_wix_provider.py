"""The Wix provider over real HTTP against the Wix sandbox: app tokens, listing with paging and
overrides, recurring sessions, busy blocks, revisions, cancellation, the change feed, errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from providers.base import CalendarProvider, SyncWindow
from providers.errors import (
    CursorExpired,
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    RateLimited,
    TransientError,
)
from providers.wix.account import WixApp
from providers.wix.calendar import WixSchedule
from sandbox.server import ServedApp, serve_in_thread
from sandbox.wix import ManualClock, WixState, create_app
from sync.event import (
    CanonicalEvent,
    EventStatus,
    ExternalCalendarOverrides,
    Recurrence,
    Transparency,
)
from sync.snapshot import RemoteEvent

LONDON = ZoneInfo("Europe/London")
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
MARKER = "calsync:conn-1:link-1"


@dataclass
class Site:
    state: WixState
    served: ServedApp
    clock: ManualClock
    app: WixApp
    instance_id: str
    schedule_id: str
    requests: list[str] = field(default_factory=list)  # "METHOD /path" of every call made
    statuses: list[int] = field(default_factory=list)  # and the status of every answer
    hooks: list[int] = field(default_factory=lambda: [0])  # before_request calls

    def schedule(self, **options: Any) -> WixSchedule:
        now = self.clock()
        window = SyncWindow(now - timedelta(days=30), now + timedelta(days=365))
        return self.app.schedule(self.instance_id, self.schedule_id, window, "google", **options)

    def session(self, day: date, hour: int, title: str = "Massage", **event: Any) -> str:
        """A session the site owner makes in the dashboard (London time)."""
        body = {"scheduleId": self.schedule_id, "title": title, "timeZone": "Europe/London",
                "start": local(day, hour), "end": local(day, hour + 1), **event}  # fmt: skip
        return str(self.state.create_event(self.instance_id, body)["id"])

    def owner_edit(self, event_id: str, **fields: Any) -> dict[str, Any]:
        return self.state.update_event(
            self.instance_id, {"id": event_id, **fields}, require_revision=False
        )

    def calls(self, path: str) -> int:
        return sum(1 for request in self.requests if request.endswith(path))


@pytest.fixture
def site() -> Iterator[Site]:
    clock = ManualClock()
    state = WixState(clock=clock)
    sandbox_app = state.add_app()
    installed = state.install(sandbox_app.app_id, time_zone="Europe/London")
    staff = state.add_schedule(installed.instance_id, "Alice", external_id="staff-alice")
    served = serve_in_thread(create_app(state))
    requests: list[str] = []
    statuses: list[int] = []
    hooks = [0]

    def record(request: httpx.Request) -> None:
        requests.append(f"{request.method} {request.url.path}")

    def answered(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    def before_request() -> None:
        hooks[0] += 1

    http = httpx.Client(trust_env=False, event_hooks={"request": [record], "response": [answered]})
    app = WixApp(served.base_url, sandbox_app.app_id, sandbox_app.secret, http, before_request,
                 clock=clock)  # fmt: skip
    yield Site(state, served, clock, app, installed.instance_id, staff["id"], requests, statuses,
               hooks)  # fmt: skip
    http.close()
    served.stop()
    state.close()


def local(day: date, hour: int, minute: int = 0) -> dict[str, str]:
    return {"localDate": f"{day.isoformat()}T{hour:02d}:{minute:02d}:00"}


def upcoming(weekday: int = 0, weeks: int = 1) -> date:
    """The first `weekday` (0 = Monday) at least `weeks` weeks from today."""
    day = datetime.now(UTC).date() + timedelta(weeks=weeks)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON)


def block(day: date, hour: int, title: str = "Dentist") -> CanonicalEvent:
    return CanonicalEvent(title=title, start=at(day, hour), end=at(day, hour + 1),
                          time_zone="Europe/London")  # fmt: skip


def by_id(items: tuple[RemoteEvent, ...] | list[RemoteEvent]) -> dict[str, RemoteEvent]:
    return {item.id: item for item in items}


def live(item: RemoteEvent) -> CanonicalEvent:
    assert item.event is not None, f"{item.id} is a tombstone"
    return item.event


# ---------------------------------------------------------------- app tokens


def test_the_token_is_fetched_once_and_shared_by_the_instance_schedules(site: Site) -> None:
    first, second = site.schedule(), site.schedule()
    first.list_changes(None)
    second.list_changes(None)
    assert isinstance(first, CalendarProvider)
    assert site.calls("/oauth2/token") == 1 and site.app.tokens.minted == 1
    assert site.hooks[0] == len(site.requests)  # before_request ran before every request


def test_the_token_is_renewed_shortly_before_it_expires(site: Site) -> None:
    schedule = site.schedule()
    schedule.list_changes(None)
    site.clock.advance(14400 - 301)  # still outside the 5-minute margin
    schedule.list_changes(None)
    assert site.calls("/oauth2/token") == 1
    site.clock.advance(2)  # inside the margin: a new token before the old one dies
    schedule.list_changes(None)
    assert site.calls("/oauth2/token") == 2
    assert 401 not in site.statuses  # renewed ahead, never refused


def test_a_token_wix_calls_expired_is_replaced_once_and_the_call_repeated(site: Site) -> None:
    frozen = datetime.now(UTC)
    app = WixApp(site.served.base_url, site.app.credentials.app_id,
                 site.app.credentials.app_secret, site.app.http, clock=lambda: frozen)  # fmt: skip
    schedule = app.schedule(site.instance_id, site.schedule_id,
                            SyncWindow(frozen, frozen + timedelta(days=30)))  # fmt: skip
    schedule.list_changes(None)
    site.clock.advance(14400)  # Wix's clock says the token is dead; ours does not know
    page = schedule.list_changes(None)
    assert page.complete and app.tokens.minted == 2 and site.statuses.count(401) == 1


def test_a_removed_app_is_a_revoked_token(site: Site) -> None:
    schedule = site.schedule()
    schedule.list_changes(None)
    site.state.remove(site.instance_id)
    with pytest.raises(PermanentError) as refused:
        schedule.list_changes(None)
    assert refused.value.reason is PermanentReason.TOKEN_REVOKED
    assert site.app.credentials.app_secret not in str(refused.value)


def test_a_wrong_app_secret_is_a_revoked_token(site: Site) -> None:
    app = WixApp(site.served.base_url, site.app.credentials.app_id, "wrong", site.app.http)
    with pytest.raises(PermanentError) as refused:
        app.schedule(site.instance_id, site.schedule_id, site.schedule().window).get("x")
    assert refused.value.reason is PermanentReason.TOKEN_REVOKED


# ---------------------------------------------------------------- reading sessions


def test_the_window_is_listed_across_pages(site: Site) -> None:
    day = upcoming(weeks=1)
    inside = [site.session(day + timedelta(days=i), 10, f"Session {i}") for i in range(5)]
    site.session(day + timedelta(days=500), 10, "Beyond the window")
    cancelled = site.session(day, 15, "Called off")
    site.state.cancel_event(site.instance_id, cancelled)
    other = site.state.add_schedule(site.instance_id, "Bob")
    site.state.create_event(site.instance_id, {"scheduleId": other["id"], "start": local(day, 9),
                                               "end": local(day, 10)})  # fmt: skip
    page = site.schedule(page_size=2).list_changes(None)
    assert page.complete
    assert [item.id for item in page.changes] == inside
    assert site.calls("/calendar/v3/events/query") == 3
    first = live(page.changes[0])
    assert first.title == "Session 0" and first.time_zone == "Europe/London"
    assert first.start == at(day, 10) and first.end == at(day, 11)
    assert page.changes[0].version == "1" and page.changes[0].marker is None


def test_session_fields_are_read_into_the_canonical_event(site: Site) -> None:
    day = upcoming(weeks=2)
    event_id = site.session(day, 9, "Yoga", notes="Bring a mat", transparency="FREE",
                            location={"type": "CUSTOM", "name": "Studio 2"})  # fmt: skip
    all_day = str(site.state.create_event(site.instance_id, {
        "scheduleId": site.schedule_id, "title": "Retreat", "allDay": True,
        "start": local(day, 0), "end": local(day + timedelta(days=2), 0),
    })["id"])  # fmt: skip
    got = site.schedule().get(event_id)
    assert live(got) == CanonicalEvent(
        title="Yoga", start=at(day, 9), end=at(day, 10), description="Bring a mat",
        location="Studio 2", time_zone="Europe/London", transparency=Transparency.FREE,
    )  # fmt: skip
    whole = live(site.schedule().get(all_day))
    assert whole.all_day and (whole.start, whole.end) == (day, day + timedelta(days=2))


def test_sessions_carry_their_effective_external_calendar_overrides(site: Site) -> None:
    site.state.set_schedule_overrides(
        site.instance_id, site.schedule_id, {"title": "Busy (Alice)", "description": "Booked"}
    )
    day = upcoming(weeks=1)
    plain = site.session(day, 9)
    own = site.session(day, 11, extendedFields={"namespaces": {
        "@calsync/externalCalendarOverrides": {"title": "Private session"}}})  # fmt: skip
    schedule = site.schedule()
    ours = schedule.create(block(day, 14), "key-1", marker=MARKER)
    listed = by_id(schedule.list_changes(None).changes)
    assert listed[plain].overrides == ExternalCalendarOverrides("Busy (Alice)", "Booked")
    assert listed[own].overrides == ExternalCalendarOverrides("Private session", "Booked")
    assert listed[ours.id].overrides is None  # a block is calsync's, not a session
    assert schedule.get(own).overrides == listed[own].overrides


def test_a_weekly_session_with_a_moved_and_a_cancelled_occurrence(site: Site) -> None:
    first = upcoming(weekday=2, weeks=1)  # a Wednesday
    master = site.session(first, 10, "Pilates", recurrenceRule={
        "frequency": "WEEKLY", "days": ["WEDNESDAY"],
        "until": {"localDate": f"{first + timedelta(weeks=5)}T00:00:00"}})  # fmt: skip
    second, third = first + timedelta(weeks=1), first + timedelta(weeks=2)
    moved_id = f"{master}_{second:%Y%m%d}T100000"
    site.owner_edit(moved_id, start=local(second, 14), end=local(second, 15))
    cancelled_id = f"{master}_{third:%Y%m%d}T100000"
    site.state.cancel_event(site.instance_id, cancelled_id)

    page = site.schedule().list_changes(None)
    assert sorted(item.id for item in page.changes) == sorted([master, moved_id, cancelled_id])
    items = by_id(page.changes)
    series = live(items[master])
    until = datetime.combine(first + timedelta(weeks=5), time(23, 59, 59), LONDON)
    assert series.recurrence == Recurrence(  # Wix's until includes its whole local day
        rule=f"FREQ=WEEKLY;BYDAY=WE;UNTIL={until.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    )
    moved = live(items[moved_id])
    assert moved.recurrence == Recurrence(series_id=master, original_start=at(second, 10))
    assert (moved.start, moved.status) == (at(second, 14), EventStatus.CONFIRMED)
    gone = live(items[cancelled_id])
    assert gone.status is EventStatus.CANCELLED
    assert gone.recurrence == Recurrence(series_id=master, original_start=at(third, 10))


# ---------------------------------------------------------------- busy blocks


def test_a_busy_block_is_tagged_marked_and_created_once(site: Site) -> None:
    schedule = site.schedule()
    day = upcoming(weeks=1)
    made = schedule.create(block(day, 13), "link-1:0", marker=MARKER, tag="microsoft")
    again = schedule.create(block(day, 13), "link-1:0", marker=MARKER, tag="microsoft")
    assert again.id == made.id and again.version == made.version
    stored = site.state.query_events(site.instance_id, {
        "query": {"filter": {"scheduleId": site.schedule_id}}})["events"]  # fmt: skip
    assert [event["id"] for event in stored] == [made.id]
    assert stored[0]["transparency"] == "BUSY" and stored[0]["appId"] == site.app.credentials.app_id
    listed = by_id(schedule.list_changes(None).changes)[made.id]
    assert (listed.tag, listed.marker) == ("microsoft", MARKER)
    assert live(listed) == block(day, 13)
    default_tag = schedule.create(block(day, 16), "link-2:0", marker=MARKER)
    assert default_tag.tag == "google"  # the schedule's provider tag


def test_all_day_and_recurring_blocks_round_trip(site: Site) -> None:
    schedule = site.schedule()
    day = upcoming(weekday=1, weeks=1)  # a Tuesday
    holiday = CanonicalEvent(title="Holiday", start=day, end=day + timedelta(days=3),
                             all_day=True)  # fmt: skip
    made = schedule.create(holiday, "all-day", marker=MARKER)
    assert live(made) == holiday and live(schedule.get(made.id)) == holiday
    stored = site.state.get_event(site.instance_id, made.id)
    assert stored["allDay"] and stored["end"]["localDate"] == f"{day + timedelta(days=3)}T00:00:00"

    utc_start = datetime(day.year, day.month, day.day, 7, tzinfo=UTC)
    every_other_week = Recurrence(rule="FREQ=WEEKLY;INTERVAL=2;COUNT=3")
    weekly = CanonicalEvent(title="Standup", start=utc_start, end=utc_start + timedelta(hours=1),
                            recurrence=every_other_week)  # fmt: skip
    series = schedule.create(weekly, "series", marker=MARKER)
    rule = site.state.get_event(site.instance_id, series.id)["recurrenceRule"]
    last = day + timedelta(weeks=4)
    assert rule == {"frequency": "WEEKLY", "interval": 2, "days": ["TUESDAY"],
                    "until": {"localDate": f"{last}T00:00:00"}}  # fmt: skip
    assert live(series).recurrence == Recurrence(
        rule=f"FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;UNTIL={last:%Y%m%d}T235959Z"
    )
    assert live(series).time_zone == "UTC" and live(series).start == utc_start
    two_days = replace(weekly, recurrence=Recurrence(rule="FREQ=WEEKLY;BYDAY=TU,TH"))
    with pytest.raises(PermanentError):
        schedule.create(two_days, "two-days", marker=MARKER)


def test_a_retried_create_after_the_block_was_removed_makes_it_again(site: Site) -> None:
    schedule = site.schedule()
    day = upcoming(weeks=1)
    first = schedule.create(block(day, 13), "link-1:0", marker=MARKER)
    schedule.delete(first.id, first.version)
    second = schedule.create(block(day, 13), "link-1:0", marker=MARKER)
    assert second.id != first.id and second.event is not None


def test_updates_write_only_what_changed_at_the_current_revision(site: Site) -> None:
    schedule = site.schedule()
    day = upcoming(weeks=1)
    made = schedule.create(block(day, 13), "k", marker=MARKER)
    same = schedule.update(made.id, block(day, 13), made.version)
    assert same.version == made.version  # nothing differed: no write, no new revision
    moved = schedule.update(made.id, replace(block(day, 15), description="Root canal"), "1")
    assert moved.version == "2" and live(moved).start == at(day, 15)
    assert live(moved).description == "Root canal" and moved.marker == MARKER
    with pytest.raises(PreconditionFailed):
        schedule.update(made.id, block(day, 9), made.version)  # revision 1 is stale
    site.owner_edit(made.id, title="Edited in Wix")
    with pytest.raises(PreconditionFailed):
        schedule.update(made.id, block(day, 9), moved.version)
    with pytest.raises(NotFound):
        schedule.update("no-such-event", block(day, 9), None)


def test_a_session_edit_from_the_external_side_keeps_the_session_location(site: Site) -> None:
    day = upcoming(weeks=1)
    event_id = site.session(day, 9, location={"type": "BUSINESS", "name": "Main St"})
    schedule = site.schedule()
    seen = schedule.get(event_id)
    schedule.update(event_id, replace(live(seen), start=at(day, 10), end=at(day, 11)),
                    seen.version)  # fmt: skip
    stored = site.state.get_event(site.instance_id, event_id)
    assert stored["location"] == {"type": "BUSINESS", "name": "Main St"}
    assert stored["start"]["localDate"].endswith("T10:00:00")


def test_cancel_is_delete_and_twice_is_done(site: Site) -> None:
    schedule = site.schedule()
    made = schedule.create(block(upcoming(), 13), "k", marker=MARKER)
    schedule.delete(made.id, made.version)
    schedule.delete(made.id, made.version)
    schedule.delete("never-existed", None)
    assert schedule.get(made.id).deleted
    with pytest.raises(NotFound):
        schedule.update(made.id, block(upcoming(), 9), None)
    other = schedule.create(block(upcoming(), 15), "k2", marker=MARKER)
    site.owner_edit(other.id, title="Edited")
    with pytest.raises(PreconditionFailed):
        schedule.delete(other.id, other.version)


def test_an_occurrence_edited_outside_becomes_a_wix_exception_once(site: Site) -> None:
    first = upcoming(weekday=3, weeks=1)
    master = site.session(first, 10, "Class", recurrenceRule={"frequency": "WEEKLY"})
    second = first + timedelta(weeks=1)
    schedule = site.schedule()
    series = live(schedule.get(master))
    occurrence = Recurrence(series_id=master, original_start=at(second, 10))
    exception = replace(series, start=at(second, 12), end=at(second, 13), recurrence=occurrence)
    written = schedule.create(exception, "exc:0", marker=MARKER)
    again = schedule.create(exception, "exc:0", marker=MARKER)
    assert again.id == written.id and again.version == written.version
    assert written.marker == MARKER and live(written).start == at(second, 12)
    assert live(written).recurrence == exception.recurrence
    third = Recurrence(series_id=master, original_start=at(first + timedelta(weeks=2), 10))
    called_off = replace(exception, recurrence=third, status=EventStatus.CANCELLED)
    assert live(schedule.create(called_off, "exc2", marker=MARKER)).status is EventStatus.CANCELLED
    listed = by_id(schedule.list_changes(None).changes)
    assert len(listed) == 3 and live(listed[written.id]).start == at(second, 12)
    with pytest.raises(NotFound):
        schedule.create(replace(exception, recurrence=Recurrence(
            series_id=master, original_start=at(second, 11))), "k", marker=MARKER)  # fmt: skip


def test_read_only_schedules_refuse_writes_without_a_request(site: Site) -> None:
    schedule = site.schedule(read_only=True)
    for write in (
        lambda: schedule.create(block(upcoming(), 9), "k", marker=MARKER),
        lambda: schedule.update("x", block(upcoming(), 9), None),
        lambda: schedule.delete("x", None),
    ):
        with pytest.raises(PermanentError) as refused:
            write()
        assert refused.value.reason is PermanentReason.FORBIDDEN
    assert site.requests == []


# ---------------------------------------------------------------- the change feed


def test_list_changes_since_a_cursor(site: Site) -> None:
    day = upcoming(weeks=1)
    edited, cancelled, untouched = (site.session(day, h) for h in (9, 11, 13))
    schedule = site.schedule()
    site.clock.advance(120)  # what changed within the overlap (60 s) before a read is re-read
    full = schedule.list_changes(None)
    assert full.complete and len(full.changes) == 3
    site.owner_edit(edited, title="Moved", start=local(day, 16), end=local(day, 17))
    site.state.cancel_event(site.instance_id, cancelled)
    made = schedule.create(block(day, 8), "k", marker=MARKER)
    site.clock.advance(120)
    page = schedule.list_changes(full.next_cursor)
    assert not page.complete
    changes = by_id(page.changes)
    assert set(changes) == {edited, cancelled, made.id} and untouched not in changes
    assert live(changes[edited]).title == "Moved" and live(changes[edited]).start == at(day, 16)
    assert changes[cancelled] == RemoteEvent.gone(cancelled, "2")
    assert changes[made.id].marker == MARKER
    site.clock.advance(120)
    assert schedule.list_changes(page.next_cursor).changes == ()


def test_a_cancelled_series_is_one_deletion_with_its_occurrences(site: Site) -> None:
    first = upcoming(weekday=4, weeks=1)
    master = site.session(first, 10, recurrenceRule={"frequency": "WEEKLY"})
    moved = f"{master}_{first + timedelta(weeks=1):%Y%m%d}T100000"
    site.owner_edit(moved, title="Special")
    schedule = site.schedule()
    site.clock.advance(120)
    cursor = schedule.list_changes(None).next_cursor
    site.state.cancel_event(site.instance_id, master)
    changes = by_id(schedule.list_changes(cursor).changes)
    assert changes == {master: RemoteEvent.gone(master, "2"), moved: RemoteEvent.gone(moved, "3")}
    assert schedule.get(moved).deleted and schedule.get(master).deleted


def test_a_schedule_override_change_rereads_the_sessions(site: Site) -> None:
    day = upcoming(weeks=1)
    session = site.session(day, 9)
    schedule = site.schedule()
    site.clock.advance(120)
    cursor = schedule.list_changes(None).next_cursor
    site.clock.advance(120)
    site.state.set_schedule_overrides(site.instance_id, site.schedule_id, {"title": "Booked"})
    changes = by_id(schedule.list_changes(cursor).changes)
    assert changes[session].overrides == ExternalCalendarOverrides(title="Booked")


def test_a_foreign_cursor_has_expired(site: Site) -> None:
    schedule = site.schedule()
    for cursor in ("garbage", "JWE.abc", site.schedule().list_changes(None).next_cursor + "x"):
        with pytest.raises(CursorExpired):
            schedule.list_changes(cursor)
    other = site.state.add_schedule(site.instance_id, "Bob")
    bob = site.app.schedule(site.instance_id, other["id"], schedule.window)
    with pytest.raises(CursorExpired):
        bob.list_changes(schedule.list_changes(None).next_cursor)


# ---------------------------------------------------------------- errors


def test_rate_limits_and_server_errors(site: Site) -> None:
    schedule = site.schedule()
    schedule.list_changes(None)
    site.state.faults.throttle(retry_after=7, path_prefix="/calendar")
    with pytest.raises(RateLimited) as limited:
        schedule.list_changes(None)
    assert limited.value.retry_after == 7
    site.state.faults.fail(503, path_prefix="/calendar")
    with pytest.raises(TransientError) as failed:
        schedule.get("x")
    assert not isinstance(failed.value, RateLimited)
    site.state.faults.fail(400, path_prefix="/calendar")
    with pytest.raises(PermanentError) as invalid:
        schedule.get("x")
    assert invalid.value.reason is PermanentReason.INVALID_EVENT
    site.state.faults.fail(503, path_prefix="/oauth2")
    site.clock.advance(14400)
    with pytest.raises(TransientError):
        schedule.get("x")
    with pytest.raises(NotFound):
        schedule.get("x")


def test_invalid_content_and_unknown_schedules(site: Site) -> None:
    schedule = site.schedule()
    daily = replace(block(upcoming(), 9), recurrence=Recurrence(rule="FREQ=DAILY"))
    with pytest.raises(PermanentError) as refused:
        schedule.create(daily, "k", marker=MARKER)
    assert refused.value.reason is PermanentReason.INVALID_EVENT
    gone = site.app.schedule(site.instance_id, "no-such-schedule", schedule.window)
    with pytest.raises(PermanentError) as deleted:
        gone.list_changes(None)
    assert deleted.value.reason is PermanentReason.CALENDAR_DELETED


def test_network_failures_are_transient(site: Site) -> None:
    app = WixApp("http://127.0.0.1:9", "app", "secret", site.app.http)
    with pytest.raises(TransientError):
        app.schedule("i", "s", site.schedule().window).get("x")
