"""Carry out a plan: each action with an idempotent write, its link saved right after.

This follows the contract in `sync.actions`. The link store is where links live between runs
(the database in a worker, a dict in the property tests); saving each wave's links as soon as
its writes are back is what lets a run that dies midway resume without repeating a finished
write.

How failures end an action or the run:
- Throttling (`RateLimited`) and a permanent refusal of the account (revoked token, forbidden,
  calendar gone) stop the run: every further call would fail the same way. The links saved so
  far stand; the caller retries later or marks the connection.
- Anything else fails that action only and the run goes on: a stale `If-Match` (the next run
  reads the new version and plans again), a refused event (it may become a dead letter), a 5xx
  on one write (the caller retries the run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Protocol

from providers.base import (
    BatchWriter,
    CalendarProvider,
    EventChange,
    EventRemoval,
    NewEvent,
    Write,
)
from providers.errors import (
    CursorExpired,
    NotFound,
    PermanentError,
    PermanentReason,
    ProviderError,
    RateLimited,
)
from sync.actions import (
    Action,
    Create,
    Delete,
    ForgetLink,
    PlanResult,
    RemoveOrphan,
    SaveLink,
    Update,
)
from sync.event import CanonicalEvent, same_content
from sync.link import Link
from sync.side import Side
from sync.snapshot import RemoteEvent, SideSnapshot
from tasks.waves import waves, write_concurrency

# What a wave of writes leaves behind: each link as saved now, or None where it is forgotten.
Settled = Mapping[str, Link | None]


class LinkStore(Protocol):
    def get(self, link_id: str) -> Link | None: ...

    def save_all(self, settled: Settled) -> None:
        """Save (or forget) the links of one wave in one unit of work."""
        ...


class DictLinkStore:
    """Links in memory, for tests and simulations."""

    def __init__(self, links: dict[str, Link] | None = None) -> None:
        self.links = links if links is not None else {}

    def get(self, link_id: str) -> Link | None:
        return self.links.get(link_id)

    def save_all(self, settled: Settled) -> None:
        for link_id, link in settled.items():
            if link is None:
                self.links.pop(link_id, None)
            else:
                self.links[link_id] = link


@dataclass
class Applied:
    done: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, ProviderError]] = field(default_factory=list)
    stopped_by: ProviderError | None = None  # the error that ended the run early


def read_side(
    provider: CalendarProvider, side: Side, cursor: str | None
) -> tuple[SideSnapshot, str]:
    """Changes since `cursor`; a forgotten cursor means a full listing, reconciled by links."""
    try:
        page = provider.list_changes(cursor)
    except CursorExpired:
        page = provider.list_changes(None)
    return page.snapshot(side), page.next_cursor


def apply_plan(
    result: PlanResult,
    providers: Mapping[Side, CalendarProvider],
    links: LinkStore,
    skip: Callable[[Action], bool] = lambda _: False,
    on_failure: Callable[[Action, ProviderError], None] = lambda *_: None,
) -> Applied:
    """Apply the actions in order (waves of independent writes at once, where the provider
    allows; see `tasks.waves`), saving the links each wave leaves behind as soon as the wave
    is back. `skip` leaves out parked changes; a crash propagates, once the links of what
    its wave did are saved."""
    applied = Applied()
    touched: dict[str, Link] = {}
    todo = [action for action in result.actions if not skip(action)]
    with ThreadPoolExecutor(max_workers=_widest(providers)) as pool:
        for wave in waves(todo, providers):
            settled: dict[str, Link | None] = {}
            try:
                for action, outcome in zip(wave, _send(pool, wave, providers, links),
                                           strict=True):  # fmt: skip
                    _take(action, outcome, applied, on_failure, touched, settled)
            finally:
                if settled:
                    links.save_all(settled)
            if applied.stopped_by is not None:
                break
    return applied


def _take(action: Action, outcome: Outcome, applied: Applied,
          on_failure: Callable[[Action, ProviderError], None], touched: dict[str, Link],
          settled: dict[str, Link | None]) -> None:  # fmt: skip
    """Account for one action's outcome; a crash is raised."""
    if isinstance(outcome, ProviderError):
        applied.failed.append((action, outcome))
        on_failure(action, outcome)
        if not _fails_one_action(outcome) and applied.stopped_by is None:
            applied.stopped_by = outcome
    elif isinstance(outcome, BaseException):
        raise outcome
    else:
        _settle(action, outcome, touched, settled)
        applied.done.append(action)


Outcome = RemoteEvent | None | BaseException


def _send(pool: ThreadPoolExecutor, wave: list[Action], providers: Mapping[Side, CalendarProvider],
          links: LinkStore) -> list[Outcome]:  # fmt: skip
    """Each action's remote write: what it returned, or what it raised. A wave of several is
    one batch request where the side's provider takes batches, else writes at once."""
    if len(wave) == 1:
        return [_outcome(wave[0], providers, links)]
    provider = providers[_side(wave[0])]  # a wave of several writes to one side
    if isinstance(provider, BatchWriter):
        return _batched(wave, provider, links)
    futures = [pool.submit(_outcome, action, providers, links) for action in wave]
    return [future.result() for future in futures]


def _outcome(action: Action, providers: Mapping[Side, CalendarProvider], links: LinkStore
             ) -> Outcome:  # fmt: skip
    try:
        return _write(action, providers, links)
    except Exception as error:  # handed back, so the wave's other writes are settled first
        return error


def _batched(wave: list[Action], provider: CalendarProvider, links: LinkStore) -> list[Outcome]:
    assert isinstance(provider, BatchWriter)
    try:
        writes = [_as_write(action, links) for action in wave]
        outcomes: list[Outcome] = list(provider.write_many(writes))
    except Exception as error:  # the whole request failed: so did each of its writes
        return [error] * len(wave)
    return [
        _checked_create(write, outcome, provider) if isinstance(write, NewEvent) else outcome
        for write, outcome in zip(writes, outcomes, strict=True)
    ]


def _checked_create(write: NewEvent, outcome: Outcome, provider: CalendarProvider) -> Outcome:
    if not isinstance(outcome, RemoteEvent):
        return outcome
    try:
        return _as_written(write, outcome, provider)
    except Exception as error:
        return error


def _widest(providers: Mapping[Side, CalendarProvider]) -> int:
    return max(write_concurrency(provider) for provider in providers.values())


def _fails_one_action(error: ProviderError) -> bool:
    if isinstance(error, RateLimited):
        return False
    if isinstance(error, PermanentError):
        return error.reason is PermanentReason.INVALID_EVENT
    return True


def _side(action: Action) -> Side:
    assert isinstance(action, Create | Update | Delete | RemoveOrphan)
    return action.side


def _as_write(action: Action, links: LinkStore) -> Write:
    """The remote call an action makes, with a series' id filled in from its link."""
    if isinstance(action, RemoveOrphan | Delete):
        return EventRemoval(action.target_id, action.if_match)
    if isinstance(action, Create):
        event = _with_series(action.event, action.series_link_id, action.side, links)
        return NewEvent(event, action.idempotency_key, action.marker, action.tag)
    assert isinstance(action, Update)
    event = _with_series(action.event, action.series_link_id, action.side, links)
    return EventChange(action.target_id, event, action.if_match)


def _write(
    action: Action, providers: Mapping[Side, CalendarProvider], links: LinkStore
) -> RemoteEvent | None:
    """The action's remote call, if it has one: the event as the provider now holds it."""
    if isinstance(action, SaveLink | ForgetLink):
        return None
    provider = providers[_side(action)]
    write = _as_write(action, links)
    if isinstance(write, EventRemoval):
        provider.delete(write.event_id, write.if_match)
        return None
    if isinstance(write, EventChange):
        return provider.update(write.event_id, write.event, write.if_match)
    made = provider.create(write.event, write.idempotency_key, marker=write.marker, tag=write.tag)
    return _as_written(write, made, provider)


def _settle(action: Action, remote: RemoteEvent | None, touched: dict[str, Link],
            settled: dict[str, Link | None]) -> None:  # fmt: skip
    """The link the action leaves behind, to be saved (`RemoveOrphan` touches none)."""
    if isinstance(action, RemoveOrphan):
        return
    link = action.settle(touched.get(action.link_id, action.link), remote)
    settled[action.link_id] = link
    if link is None:
        touched.pop(action.link_id, None)
    else:
        touched[action.link_id] = link


def _as_written(write: NewEvent, made: RemoteEvent, provider: CalendarProvider) -> RemoteEvent:
    """A create that found an earlier attempt's event with other content reconciles it, as
    after a 409."""
    if made.event is None or not same_content(made.event, write.event):
        return provider.update(made.id, write.event, made.version)
    return made


def _with_series(
    event: CanonicalEvent, series_link_id: str | None, side: Side, links: LinkStore
) -> CanonicalEvent:
    if series_link_id is None or event.recurrence is None:
        return event
    series = links.get(series_link_id)
    series_id = None if series is None else series.id_on(side)
    if series_id is None:
        raise NotFound(f"the series of link {series_link_id} has no copy on {side} yet")
    return replace(event, recurrence=replace(event.recurrence, series_id=series_id))
