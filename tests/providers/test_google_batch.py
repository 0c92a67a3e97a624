"""`GoogleCalendar.write_many`: batched writes through google-api-python-client's own
`BatchHttpRequest`, against the Google sandbox's batch endpoint over HTTP. Requests are counted
by the `before_request` hook, which sees every HTTP request the provider makes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from harness.google import BASE, CLIENT_ID, CLIENT_SECRET, USER, WINDOW, Calls, GoogleWorld

from providers.base import (
    BatchWriter,
    CalendarInfo,
    EventChange,
    EventRemoval,
    NewEvent,
    WriteOutcome,
)
from providers.errors import (
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    RateLimited,
    TransientError,
)
from providers.google.account import GoogleAccount
from providers.google.calendar import GoogleCalendar
from providers.google.events import event_id_for, instance_id
from sync.event import CanonicalEvent, Recurrence
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


def session(title: str, hours: float = 0, **fields: Any) -> CanonicalEvent:
    start = BASE + timedelta(hours=hours)
    return CanonicalEvent(title, start, start + timedelta(hours=1), time_zone=BERLIN, **fields)


def creates(count: int, first: int = 0) -> list[NewEvent]:
    numbers = range(first, first + count)
    return [NewEvent(session(f"s{i}"), f"wix:session-{i}", MARKER) for i in numbers]


def made(outcomes: list[WriteOutcome]) -> list[RemoteEvent]:
    assert all(isinstance(outcome, RemoteEvent) for outcome in outcomes), outcomes
    return [outcome for outcome in outcomes if isinstance(outcome, RemoteEvent)]


def stored_ids(world: GoogleWorld) -> list[str]:
    return sorted(event["id"] for event in world.state.stored_events(USER))


def test_writes_go_in_batches_of_fifty(
    world: GoogleWorld, calendar: GoogleCalendar, calls: Calls
) -> None:
    assert isinstance(calendar, BatchWriter) and calendar.batch_size == 50
    assert calendar.api.batch_uri == world.server.base_url + "/batch/calendar/v3"
    writes = creates(120)
    events = made(calendar.write_many(writes))
    assert calls.count == 3
    assert [e.id for e in events] == [event_id_for(w.idempotency_key) for w in writes]
    assert [e.event for e in events] == [w.event for w in writes]
    assert all(e.marker == MARKER and e.version for e in events)
    assert stored_ids(world) == sorted(e.id for e in events)
    assert calendar.write_many([]) == [] and calls.count == 3


def test_retried_creates_return_the_same_events_and_make_no_duplicates(
    world: GoogleWorld, calendar: GoogleCalendar
) -> None:
    writes = creates(60)
    first = made(calendar.write_many(writes))
    calendar.delete(first[7].id, first[7].version)  # gone since: the retry brings it back
    again = made(calendar.write_many(writes))
    assert [e.id for e in again] == [e.id for e in first]
    assert [e.event for e in again] == [w.event for w in writes]
    assert [e.version for e in again[:7]] == [e.version for e in first[:7]]
    assert stored_ids(world) == sorted(e.id for e in first)
    assert calendar.get(first[7].id).event == writes[7].event


def test_a_stale_etag_fails_only_its_own_write(
    world: GoogleWorld, calendar: GoogleCalendar
) -> None:
    stale, kept, doomed = made(calendar.write_many(creates(3)))
    world.state.patch_event(USER, stale.id, {"colorId": "5"})  # the owner colours it
    outcomes = calendar.write_many([
        EventChange(stale.id, session("lost", 2), stale.version),
        EventChange(kept.id, session("moved", 3), kept.version),
        EventRemoval(doomed.id, doomed.version),
        NewEvent(session("new"), "wix:session-new", MARKER),
    ])  # fmt: skip
    refused, updated, removed, created = outcomes
    assert isinstance(refused, PreconditionFailed)
    assert isinstance(updated, RemoteEvent) and updated.event == session("moved", 3)
    assert updated.version != kept.version
    assert removed is None and calendar.get(doomed.id).deleted
    assert isinstance(created, RemoteEvent) and created.event == session("new")
    assert calendar.get(stale.id).event == session("s0")


def test_deleting_a_missing_event_counts_as_done(calendar: GoogleCalendar, calls: Calls) -> None:
    [gone] = made(calendar.write_many(creates(1)))
    calendar.delete(gone.id, gone.version)
    removals = [EventRemoval(gone.id, gone.version), EventRemoval("neverexisted1", None)]
    assert calendar.write_many(removals) == [None, None]  # 410 and 404
    assert calls.count == 3


def test_a_read_only_calendar_raises(world: GoogleWorld, calls: Calls) -> None:
    flagged = world.calendar(calls=calls, read_only=True)
    with pytest.raises(PermanentError) as caught:
        flagged.write_many(creates(2))
    assert caught.value.reason is PermanentReason.FORBIDDEN and calls.count == 0

    state = world.state  # not flagged: Google refuses each write itself
    state.add_account("bob@example.com")
    shared = state.add_calendar("bob@example.com", summary="Bob")
    state.share_calendar(shared, USER, "reader")
    refusals = world.calendar(shared).write_many(creates(2))
    assert all(
        isinstance(r, PermanentError) and r.reason is PermanentReason.FORBIDDEN for r in refusals
    )


def test_an_occurrence_in_the_middle_of_a_batch_still_lands(
    world: GoogleWorld, calendar: GoogleCalendar, calls: Calls
) -> None:
    weekly = session("Yoga", recurrence=Recurrence(rule="FREQ=WEEKLY;COUNT=4"))
    series_id = event_id_for("wix:series")
    second = BASE + timedelta(days=7)
    exception = Recurrence(series_id=series_id, original_start=second)
    moved = session("Yoga (moved)", 7 * 24 + 2, recurrence=exception)
    [before] = made(calendar.write_many(creates(1)))
    outcomes = calendar.write_many([
        NewEvent(weekly, "wix:series", MARKER),
        NewEvent(moved, "wix:exception", "calsync:conn-1:link-2"),
        EventChange(before.id, session("no version", 4), None),
        NewEvent(session("after"), "wix:after", MARKER),
    ])  # fmt: skip
    assert calls.count == 1 + 1 + 1 + 2  # the first batch, the batch, the patch, get and patch
    series, occurrence, changed, after = made(outcomes)
    assert series.id == series_id and series.event == weekly
    assert occurrence.id == instance_id(series_id, second) and occurrence.event == moved
    assert changed.event == session("no version", 4) and after.event == session("after")
    assert calendar.get(occurrence.id).event == moved


@pytest.mark.parametrize(("status", "reason"), [(403, "userRateLimitExceeded"), (429, "")])
def test_a_rate_limited_batch_raises(
    world: GoogleWorld, calendar: GoogleCalendar, status: int, reason: str
) -> None:
    world.state.faults.rate_limit(
        1, status=status, reason=reason or "rateLimitExceeded", retry_after=9, match="/batch/"
    )
    with pytest.raises(RateLimited) as caught:
        calendar.write_many(creates(3))
    assert caught.value.retry_after == 9 and stored_ids(world) == []


def test_an_unauthorised_or_unreachable_batch_raises(
    world: GoogleWorld, calendar: GoogleCalendar, calls: Calls
) -> None:
    world.state.revoke_access(USER)  # the batch is refused (401), so is the refresh
    with pytest.raises(PermanentError) as caught:
        calendar.write_many(creates(2))
    assert caught.value.reason is PermanentReason.TOKEN_REVOKED and calls.count == 2

    nowhere = GoogleAccount(
        world.tokens(),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_url=world.token_url,
        api_base_url="http://127.0.0.1:9/calendar/v3/",  # nothing listens there
    )
    with pytest.raises(TransientError):
        nowhere.calendar(CalendarInfo(USER), WINDOW).write_many(creates(2))


def test_token_refreshes_for_a_batch_pass_through_before_request(
    world: GoogleWorld, calls: Calls
) -> None:
    tokens = world.tokens()
    expired = replace(tokens, expiry=tokens.expiry - timedelta(days=1))
    calendar = world.account(expired, calls).calendar(CalendarInfo(USER), WINDOW)
    made(calendar.write_many(creates(2)))
    assert calls.count == 2 and len(world.refreshed) == 1  # the token, then the batch

    world.state.expire_access_tokens()  # Google refuses a token the client thinks valid
    made(calendar.write_many(creates(3, first=2)))
    assert calls.count == 2 + 3 and len(world.refreshed) == 2  # batch (401), token, batch
    assert len(stored_ids(world)) == 5
