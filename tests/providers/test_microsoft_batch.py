"""The Microsoft provider's batched writes (`write_many`, Graph's JSON `$batch`) against the Graph
sandbox on loopback: requests counted by the `before_request` hook, results read back from the
sandbox's mailbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from harness.microsoft import signed_in
from test_microsoft_calendar import WINDOW, berlin_event
from test_microsoft_series import at, exception, session

from providers.base import (
    BatchWriter,
    CalendarInfo,
    EventChange,
    EventRemoval,
    NewEvent,
    Write,
    WriteOutcome,
)
from providers.errors import (
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    RateLimited,
    TransientError,
)
from providers.microsoft.account import MicrosoftAccount
from providers.microsoft.calendar import MicrosoftCalendar
from providers.microsoft.writes import transaction_id
from sandbox.graph import GraphSettings
from sandbox.graph.harness import GraphHarness, graph_harness
from sandbox.graph.state import Instance
from sync.snapshot import RemoteEvent


@dataclass
class Requests:
    """The HTTP requests the provider made, as its `before_request` hook saw them."""

    count: int = 0
    # Each run right before one of the next requests: the owner editing in Outlook, a fault.
    before_next: list[Callable[[], None]] = field(default_factory=list)

    def __call__(self) -> None:
        self.count += 1
        if self.before_next:
            self.before_next.pop(0)()


@dataclass
class Mailbox:
    graph: GraphHarness
    account: MicrosoftAccount
    calendar: MicrosoftCalendar
    requests: Requests

    @property
    def user(self) -> str:
        return self.graph.user.id

    def held(self) -> list[Instance]:
        return self.graph.state.list_events(self.user, None)

    def subjects(self) -> list[str]:
        return sorted(str(e.content["subject"]) for e in self.held())

    def ids(self) -> list[str]:
        return sorted(e.id for e in self.held())

    def subject(self, event_id: str) -> str:
        return str(self.graph.state.get_instance(self.user, event_id).content["subject"])

    def owner_renames(self, event_id: str) -> None:
        rename = {"subject": "Owner's"}
        self.graph.state.update_event(self.user, event_id, rename, check_access=False)

    def fail_next_batch(self) -> None:
        self.graph.state.faults.fail(1, status=503, path_prefix="/v1.0/$batch")

    def made(self, *titles: str) -> list[RemoteEvent]:
        """Events calsync made earlier, one by one (their requests are not counted)."""
        made = [
            self.calendar.create(berlin_event(t, 4 + n), f"key-{t}", marker=f"calsync:c1:{t}")
            for n, t in enumerate(titles)
        ]
        self.requests.count = 0
        return made


def new(n: int) -> NewEvent:
    event = berlin_event(f"Booking {n}", 1 + n % 28, 8 + n % 10)
    return NewEvent(event, f"key-{n}", f"calsync:c1:l{n}")


def written(outcomes: list[WriteOutcome]) -> list[RemoteEvent]:
    assert all(isinstance(o, RemoteEvent) for o in outcomes), outcomes
    return [o for o in outcomes if isinstance(o, RemoteEvent)]


@pytest.fixture
def box(request: pytest.FixtureRequest) -> Iterator[Mailbox]:
    with graph_harness(getattr(request, "param", None)) as graph:
        requests = Requests()
        account = signed_in(graph, before_request=requests)
        primary = next(c for c in account.list_calendars() if c.primary)
        requests.count = 0
        yield Mailbox(graph, account, account.calendar(primary, WINDOW), requests)
        account.close()


def test_the_calendar_takes_batches_of_twenty(box: Mailbox) -> None:
    assert isinstance(box.calendar, BatchWriter) and box.calendar.batch_size == 20
    assert box.calendar.write_concurrency == 1


def test_45_creates_go_out_in_3_requests_as_the_single_create_makes_them(box: Mailbox) -> None:
    writes = [new(n) for n in range(45)]
    made = written(box.calendar.write_many(writes))
    assert box.requests.count == 3
    assert [m.event for m in made] == [w.event for w in writes]
    assert [m.marker for m in made] == [w.marker for w in writes]
    assert box.ids() == sorted(m.id for m in made)
    held = {e.id: e for e in box.held()}
    for write, event in zip(writes, made, strict=True):
        assert held[event.id].record.transaction_id == transaction_id(write.idempotency_key)
        assert held[event.id].etag == event.version


REPEATED_CREATE = {  # what Graph answers a create whose transactionId is taken
    "answers-the-first-event": GraphSettings(),
    "answers-409": GraphSettings(duplicate_transaction="conflict"),
}


@pytest.mark.parametrize("box", REPEATED_CREATE.values(), ids=REPEATED_CREATE, indirect=True)
def test_retried_creates_make_no_duplicates(box: Mailbox) -> None:
    alone = box.calendar.create(new(0).event, "key-0", marker="calsync:c1:l0")
    writes = [new(n) for n in range(25)]
    first = written(box.calendar.write_many(writes))
    again = written(box.calendar.write_many(writes))
    assert first[0].id == alone.id  # the batch derives the transactionId as the single call does
    assert [e.id for e in again] == [e.id for e in first]
    assert [e.event for e in again] == [w.event for w in writes]
    assert len(box.ids()) == 25


def test_a_lost_batch_answer_is_transient_and_the_retry_finds_the_events(box: Mailbox) -> None:
    box.graph.state.faults.lose_answers(1, path_prefix="/v1.0/$batch")
    writes = [new(n) for n in range(5)]
    with pytest.raises(TransientError):
        box.calendar.write_many(writes)
    assert len(box.subjects()) == 5  # carried out, the answer lost
    again = written(box.calendar.write_many(writes))
    assert sorted(e.id for e in again) == box.ids()


def test_a_stale_version_fails_its_own_write_only(box: Mailbox) -> None:
    kept, stale, removed, stale_removal = box.made("kept", "stale", "removed", "stale-removal")
    box.owner_renames(stale.id)
    box.owner_renames(stale_removal.id)
    writes: list[Write] = [
        EventChange(kept.id, berlin_event("kept, moved", 20), kept.version),
        EventChange(stale.id, berlin_event("lost update", 21), stale.version),
        EventRemoval(removed.id, removed.version),
        EventRemoval(stale_removal.id, stale_removal.version),
        new(1),
    ]
    changed, refused, gone, refused_removal, created = box.calendar.write_many(writes)
    assert isinstance(changed, RemoteEvent) and changed.event == berlin_event("kept, moved", 20)
    assert changed.marker == "calsync:c1:kept" and changed.version != kept.version
    assert isinstance(refused, PreconditionFailed)
    assert gone is None
    assert isinstance(refused_removal, PreconditionFailed)  # Graph's 412 to the item's If-Match
    assert isinstance(created, RemoteEvent)
    assert box.subjects() == ["Booking 1", "Owner's", "Owner's", "kept, moved"]
    # One request for the create, the deletes and the updates' reads; one for their PATCHes.
    assert box.requests.count == 2


def test_an_update_sends_if_match_with_its_patch(box: Mailbox) -> None:
    (made,) = box.made("cut")
    # The read goes out; then the owner edits the event; then the PATCH.
    box.requests.before_next += [lambda: None, lambda: box.owner_renames(made.id)]
    (outcome,) = box.calendar.write_many([EventChange(made.id, berlin_event("x", 9), made.version)])
    assert isinstance(outcome, PreconditionFailed)
    assert box.subject(made.id) == "Owner's"


def test_deleting_a_missing_event_counts_as_done(box: Mailbox) -> None:
    (made,) = box.made("cut")
    box.graph.state.delete_event(box.user, made.id, check_access=False)
    removals = [EventRemoval(made.id, made.version), EventRemoval("AAMkAGnoSuchEventAAA=", None)]
    outcomes = box.calendar.write_many(removals)
    assert outcomes == [None, None]
    assert box.requests.count == 1


def test_a_read_only_calendar_raises_without_a_request(box: Mailbox) -> None:
    holidays = box.graph.state.add_calendar(box.user, "Holidays", can_edit=False)
    calendar = box.account.calendar(CalendarInfo(holidays.id, read_only=True), WINDOW)
    with pytest.raises(PermanentError) as refused:
        calendar.write_many([new(1), EventRemoval("some-id", None)])
    assert refused.value.reason is PermanentReason.FORBIDDEN
    assert box.requests.count == 0


def test_each_write_graph_refuses_is_forbidden_like_the_single_call(box: Mailbox) -> None:
    holidays = box.graph.state.add_calendar(box.user, "Holidays", can_edit=False)
    calendar = box.account.calendar(CalendarInfo(holidays.id), WINDOW)  # not flagged: Graph says no
    outcomes = calendar.write_many([new(1), new(2)])
    reasons = [o.reason for o in outcomes if isinstance(o, PermanentError)]
    assert reasons == [PermanentReason.FORBIDDEN] * 2


def test_an_exception_of_a_series_in_a_batch_lands(box: Mailbox) -> None:
    master = box.calendar.create(session(), "series-1", marker="calsync:c1:s1")
    moved = exception(master.id, 11, at(11, 20), title="Yoga (late)")
    landed, plain = box.calendar.write_many([NewEvent(moved, "exc-1", "calsync:c1:e1"), new(1)])
    assert isinstance(landed, RemoteEvent) and landed.event == moved
    assert isinstance(plain, RemoteEvent) and box.subject(plain.id) == "Booking 1"
    view = box.graph.state.calendar_view(box.user, None, WINDOW.start, WINDOW.end)
    found = [(i.kind, i.start, i.content["subject"]) for i in view]
    assert ("exception", at(11, 20), "Yoga (late)") in found
    assert box.calendar.get(landed.id).event == moved


def test_a_throttled_write_is_rate_limited_and_nothing_more_is_sent(box: Mailbox) -> None:
    creates = "/v1.0/me/calendars/"  # the first create inside the batch, not the batch
    box.graph.state.faults.throttle(1, retry_after=5, path_prefix=creates, methods=["POST"])
    outcomes = box.calendar.write_many([new(n) for n in range(25)])
    throttled = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(throttled) == 6 and all(o.retry_after == 5 for o in throttled)
    assert all(isinstance(o, RateLimited) for o in outcomes[20:])  # never sent
    assert box.requests.count == 1
    assert len(box.subjects()) == 19


def test_a_throttled_batch_request_is_raised(box: Mailbox) -> None:
    box.graph.state.faults.throttle(1, retry_after=3, path_prefix="/v1.0/$batch")
    with pytest.raises(RateLimited) as throttled:
        box.calendar.write_many([new(1), new(2)])
    assert throttled.value.retry_after == 3
    assert box.subjects() == []


def test_an_unauthorised_batch_request_is_raised(box: Mailbox) -> None:
    box.graph.state.identity.revoke_refresh_tokens(box.user)
    box.graph.state.identity.expire_access_tokens(box.user)
    with pytest.raises(PermanentError) as refused:
        box.calendar.write_many([new(1), new(2)])
    assert refused.value.reason is PermanentReason.TOKEN_REVOKED
    assert box.subjects() == []


def test_an_unreachable_graph_is_raised(box: Mailbox) -> None:
    box.graph.api.stop()
    with pytest.raises(TransientError):
        box.calendar.write_many([new(1), new(2)])


def test_once_a_write_is_done_a_failed_request_fails_the_writes_still_waiting(box: Mailbox) -> None:
    (made,) = box.made("cut")
    change = EventChange(made.id, berlin_event("x", 9), made.version)
    box.requests.before_next += [lambda: None, box.fail_next_batch]  # the PATCH of the update
    created, changed = box.calendar.write_many([new(1), change])
    assert isinstance(created, RemoteEvent) and box.subject(created.id) == "Booking 1"
    assert type(changed) is TransientError and box.subject(made.id) == "cut"
    box.requests.before_next += [lambda: None, box.fail_next_batch]
    with pytest.raises(TransientError):  # no write had an outcome yet: the request's error
        box.calendar.write_many([change])
