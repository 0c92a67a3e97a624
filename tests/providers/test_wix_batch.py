"""Batched writes to Wix (`WixSchedule.write_many`) over real HTTP against the Wix sandbox: bulk
create, update and cancel, each write keeping its single call's contract."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
import test_wix_provider
from test_wix_provider import MARKER, Site, at, block, live, upcoming

from providers.base import BatchWriter, EventChange, EventRemoval, NewEvent, Write
from providers.errors import (
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    RateLimited,
)
from sync.event import ExternalCalendarOverrides, Recurrence
from sync.snapshot import RemoteEvent

site = test_wix_provider.site  # the sandbox site, its provider and its request log

BULK_CREATE = "/calendar/v3/bulk/events/create"
BULK_UPDATE = "/calendar/v3/bulk/events/update"
BULK_CANCEL = "/calendar/v3/bulk/events/cancel"


def new_blocks(count: int, prefix: str = "k") -> list[Write]:
    """`count` busy blocks, ten a day from 8:00, with keys `<prefix>0`, `<prefix>1`, ..."""
    first = upcoming()
    return [NewEvent(block(first + timedelta(days=i // 10), 8 + i % 10, f"Block {i}"),
                     f"{prefix}{i}", MARKER) for i in range(count)]  # fmt: skip


def made(outcomes: list[object]) -> list[RemoteEvent]:
    assert all(isinstance(outcome, RemoteEvent) for outcome in outcomes), outcomes
    return [outcome for outcome in outcomes if isinstance(outcome, RemoteEvent)]


def stored_ids(site: Site) -> list[str]:
    """The live events of the schedule, as the sandbox holds them."""
    request = {"fromLocalDate": "2000-01-01T00:00:00", "toLocalDate": "2099-01-01T00:00:00",
               "query": {"filter": {"scheduleId": site.schedule_id},
                         "cursorPaging": {"limit": 1000}}}  # fmt: skip
    return [event["id"] for event in site.state.query_events(site.instance_id, request)["events"]]


def test_150_creates_go_in_two_bulk_requests(site: Site) -> None:
    schedule = site.schedule()
    assert isinstance(schedule, BatchWriter) and schedule.batch_size == 100
    created = made(schedule.write_many(new_blocks(150)))
    assert [live(remote).title for remote in created] == [f"Block {i}" for i in range(150)]
    assert all(remote.marker == MARKER and remote.tag == "google" for remote in created)
    assert sorted(stored_ids(site)) == sorted(remote.id for remote in created)
    # a key lookup and a bulk create per 100, after the token: no request per event
    assert Counter(site.requests) == {"POST /oauth2/token": 1, "POST /calendar/v3/events/query": 2,
                                      f"POST {BULK_CREATE}": 2}  # fmt: skip
    assert site.hooks[0] == len(site.requests) == 5


def test_a_retried_batch_finds_its_events_instead_of_making_more(site: Site) -> None:
    writes = new_blocks(120)
    schedule = site.schedule()
    first_try = made(schedule.write_many(writes[:30]))  # the attempt that died after 30
    retried = made(schedule.write_many(writes))
    again = made(schedule.write_many(writes))
    assert [remote.id for remote in retried[:30]] == [remote.id for remote in first_try]
    assert [remote.id for remote in again] == [remote.id for remote in retried]
    assert sorted(stored_ids(site)) == sorted(remote.id for remote in retried)
    assert site.calls(BULK_CREATE) == 3  # 30, then 70 and 20; nothing the third time
    other = NewEvent(block(upcoming(weeks=3), 9, "Other content"), "same0", MARKER)
    twice = made(schedule.write_many([*new_blocks(1, "same"), other]))
    assert twice[0].id == twice[1].id and len(stored_ids(site)) == 121
    assert live(twice[1]).title == "Block 0"  # the key's first write made it, as on a retry


def test_a_stale_revision_fails_only_its_own_write(site: Site) -> None:
    day = upcoming()
    schedule = site.schedule()
    a, b, c, d = made(schedule.write_many(new_blocks(4)))
    site.owner_edit(b.id, title="Edited by the owner")
    evening = {"start": at(day, 18), "end": at(day, 19)}
    writes: list[Write] = [
        EventChange(x.id, replace(live(x), title=f"New {x.id}", **evening), x.version)
        for x in (a, b, c, d)
    ]

    def owner_edits_d_meanwhile(request: httpx.Request) -> None:
        if request.url.path == BULK_UPDATE:
            site.owner_edit(d.id, title="Edited while the batch was on its way")

    site.app.http.event_hooks["request"].append(owner_edits_d_meanwhile)
    outcomes = schedule.write_many(writes)
    assert isinstance(outcomes[1], PreconditionFailed)  # seen before writing
    assert isinstance(outcomes[3], PreconditionFailed)  # Wix's REVISION_MISMATCH
    for written, before in ((outcomes[0], a), (outcomes[2], c)):
        assert isinstance(written, RemoteEvent) and written.id == before.id
        assert live(written).title == f"New {before.id}" and live(written).start == at(day, 18)
        assert written.version != before.version
    assert live(schedule.get(b.id)).title == "Edited by the owner"
    assert live(schedule.get(d.id)).title == "Edited while the batch was on its way"
    assert site.calls(BULK_UPDATE) == 1 and site.calls("/calendar/v3/events/" + a.id) == 0


def test_updates_send_only_what_changed_and_at_most_50_a_request(site: Site) -> None:
    schedule = site.schedule()
    blocks = made(schedule.write_many(new_blocks(60)))
    unchanged = EventChange(blocks[0].id, live(blocks[0]), blocks[0].version)
    retitled = [EventChange(x.id, replace(live(x), title="Moved"), x.version) for x in blocks[1:]]
    outcomes = made(schedule.write_many([unchanged, *retitled]))
    assert outcomes[0].version == blocks[0].version  # nothing differed: nothing written
    assert all(live(x).title == "Moved" for x in outcomes[1:])
    assert site.calls(BULK_UPDATE) == 2  # 59 changes: 50 and 9
    schedule.delete(blocks[1].id, None)
    gone = [EventChange(event_id, live(blocks[2]), None) for event_id in (blocks[1].id, "missing")]
    assert all(isinstance(outcome, NotFound) for outcome in schedule.write_many(gone))


def test_a_session_changed_in_bulk_keeps_its_other_fields_and_overrides(site: Site) -> None:
    day = upcoming()
    site.state.set_schedule_overrides(site.instance_id, site.schedule_id, {"title": "Booked"})
    sessions = [site.session(day, hour, location={"type": "BUSINESS", "name": "Main St"})
                for hour in (9, 14)]  # fmt: skip
    schedule = site.schedule()
    seen = [schedule.get(session) for session in sessions]
    moves = [EventChange(x.id, replace(live(x), start=live(x).start + timedelta(hours=1),
                                       end=live(x).end + timedelta(hours=1)), x.version)
             for x in seen]  # fmt: skip
    site.requests.clear()
    written = made(schedule.write_many(moves))
    assert [x.overrides for x in written] == [ExternalCalendarOverrides("Booked")] * 2
    for session, hour in zip(sessions, (10, 15), strict=True):
        stored = site.state.get_event(site.instance_id, session)
        assert stored["location"] == {"type": "BUSINESS", "name": "Main St"}
        assert stored["start"]["localDate"].endswith(f"T{hour}:00:00")
    assert site.calls("/calendar/v3/schedules/" + site.schedule_id) == 1  # once, not per session


def test_cancelling_a_missing_or_cancelled_event_is_done(site: Site) -> None:
    schedule = site.schedule()
    gone, live_one, unguarded, stale = made(schedule.write_many(new_blocks(4)))
    schedule.delete(gone.id, None)
    site.owner_edit(stale.id, title="Edited")
    outcomes = schedule.write_many([
        EventRemoval(gone.id, gone.version), EventRemoval("missing", None),
        EventRemoval("missing-too", "3"), EventRemoval(live_one.id, live_one.version),
        EventRemoval(unguarded.id, None), EventRemoval(stale.id, stale.version),
        EventRemoval(live_one.id, live_one.version),
    ])  # fmt: skip
    assert outcomes[:5] == [None] * 5 and outcomes[6] is None
    assert isinstance(outcomes[5], PreconditionFailed)
    assert all(schedule.get(x.id).deleted for x in (gone, live_one, unguarded))
    assert not schedule.get(stale.id).deleted
    assert site.calls(BULK_CANCEL) == 1


def test_a_read_only_schedule_refuses_the_batch_without_a_request(site: Site) -> None:
    with pytest.raises(PermanentError) as refused:
        site.schedule(read_only=True).write_many(new_blocks(2))
    assert refused.value.reason is PermanentReason.FORBIDDEN
    assert site.requests == []


def test_a_throttled_request_is_raised_not_taken_for_a_write_error(site: Site) -> None:
    schedule = site.schedule()
    site.state.faults.throttle(times=1, retry_after=7, path_prefix=BULK_CREATE)
    with pytest.raises(RateLimited) as throttled:
        schedule.write_many(new_blocks(3))
    assert throttled.value.retry_after == 7
    assert stored_ids(site) == []
    site.state.faults.throttle(times=1, path_prefix="/calendar/v3/events/missing/cancel")
    with pytest.raises(RateLimited):
        schedule.write_many([EventRemoval("missing", "3")])


def test_a_mixed_batch_keeps_its_order(site: Site) -> None:
    schedule = site.schedule()
    kept, removed = made(schedule.write_many(new_blocks(2, "old")))
    first, last = new_blocks(2, "new")
    change = EventChange(kept.id, replace(live(kept), title="Retitled"), kept.version)
    outcomes = schedule.write_many([first, change, EventRemoval(removed.id, removed.version), last])
    assert isinstance(outcomes[0], RemoteEvent) and live(outcomes[0]).title == "Block 0"
    assert isinstance(outcomes[1], RemoteEvent) and outcomes[1].id == kept.id
    assert live(outcomes[1]).title == "Retitled"
    assert outcomes[2] is None and schedule.get(removed.id).deleted
    assert isinstance(outcomes[3], RemoteEvent) and live(outcomes[3]).title == "Block 1"
    bulk = [request.split("/")[-1] for request in site.requests if "/bulk/" in request]
    assert bulk == ["create", "create", "update", "cancel", "create"]


def test_occurrence_writes_inside_a_batch_land(site: Site) -> None:
    first = upcoming(weekday=3)
    master = site.session(first, 10, "Class", recurrenceRule={"frequency": "WEEKLY"})
    schedule = site.schedule()
    second, third, fourth, fifth = (first + timedelta(weeks=n) for n in range(1, 5))
    occurrence = Recurrence(series_id=master, original_start=at(second, 10))
    moved = replace(live(schedule.get(master)), start=at(second, 12), end=at(second, 13),
                    recurrence=occurrence)  # fmt: skip
    before, after = new_blocks(2)
    outcomes = made(schedule.write_many([before, NewEvent(moved, "exc", MARKER), after]))
    exception = outcomes[1]
    assert live(exception).recurrence == occurrence and live(exception).start == at(second, 12)
    stored = site.state.get_event(site.instance_id, exception.id)
    assert stored["recurrenceType"] == "EXCEPTION" and stored["recurringEventId"] == master
    assert [live(x).title for x in (outcomes[0], outcomes[2])] == ["Block 0", "Block 1"]
    assert site.calls(BULK_CREATE) == 2
    # writes addressed to an occurrence by its id alone, which no batch query lists
    instances = [schedule.reader.occurrence(master, at(day, 10)) for day in (third, fourth, fifth)]
    renamed, guarded, unguarded = (doc for doc in instances if doc is not None)
    retitled = replace(live(schedule.get(renamed["id"])), title="Moved", recurrence=None)
    changed, *removed = schedule.write_many([
        EventChange(renamed["id"], retitled, None),
        EventRemoval(guarded["id"], guarded["revision"]), EventRemoval(unguarded["id"], None),
    ])  # fmt: skip
    assert isinstance(changed, RemoteEvent) and live(changed).title == "Moved"
    assert removed == [None, None]
    held = [site.state.get_event(site.instance_id, doc["id"]) for doc in instances if doc]
    assert [(doc["recurrenceType"], doc["status"], doc["title"]) for doc in held] == [
        ("EXCEPTION", "CONFIRMED", "Moved"), ("EXCEPTION", "CANCELLED", "Class"),
        ("EXCEPTION", "CANCELLED", "Class")]  # fmt: skip
