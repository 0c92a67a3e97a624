"""Carry out a plan: each action with an idempotent write, its link saved right after.

This follows the contract in `sync.actions`. The link store is where links live between runs
(the database in a worker, a dict in the property tests); saving after every write is what
lets a run that dies midway resume without repeating a finished write.

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
from dataclasses import dataclass, field, replace
from typing import Protocol

from providers.base import (
    CalendarProvider,
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


class LinkStore(Protocol):
    def get(self, link_id: str) -> Link | None: ...

    def save(self, link: Link) -> None: ...

    def forget(self, link_id: str) -> None: ...


class DictLinkStore:
    """Links in memory, for tests and simulations."""

    def __init__(self, links: dict[str, Link] | None = None) -> None:
        self.links = links if links is not None else {}

    def get(self, link_id: str) -> Link | None:
        return self.links.get(link_id)

    def save(self, link: Link) -> None:
        self.links[link.link_id] = link

    def forget(self, link_id: str) -> None:
        self.links.pop(link_id, None)


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
    """Apply the actions in order. `skip` leaves out parked changes; a crash propagates."""
    applied = Applied()
    touched: dict[str, Link] = {}
    for action in result.actions:
        if skip(action):
            continue
        try:
            _apply(action, providers, links, touched)
        except ProviderError as error:
            applied.failed.append((action, error))
            on_failure(action, error)
            if not _fails_one_action(error):
                applied.stopped_by = error
                break
        else:
            applied.done.append(action)
    return applied


def _fails_one_action(error: ProviderError) -> bool:
    if isinstance(error, RateLimited):
        return False
    if isinstance(error, PermanentError):
        return error.reason is PermanentReason.INVALID_EVENT
    return True


def _apply(
    action: Action,
    providers: Mapping[Side, CalendarProvider],
    links: LinkStore,
    touched: dict[str, Link],
) -> None:
    if isinstance(action, RemoveOrphan):
        providers[action.side].delete(action.target_id, action.if_match)
        return
    remote: RemoteEvent | None = None
    if isinstance(action, Create):
        remote = _create(action, providers[action.side], links)
    elif isinstance(action, Update):
        event = _with_series(action.event, action.series_link_id, action.side, links)
        remote = providers[action.side].update(action.target_id, event, action.if_match)
    elif isinstance(action, Delete):
        providers[action.side].delete(action.target_id, action.if_match)
    else:
        assert isinstance(action, SaveLink | ForgetLink)
    settled = action.settle(touched.get(action.link_id, action.link), remote)
    if settled is None:
        links.forget(action.link_id)
        touched.pop(action.link_id, None)
    else:
        links.save(settled)
        touched[action.link_id] = settled


def _create(action: Create, provider: CalendarProvider, links: LinkStore) -> RemoteEvent:
    event = _with_series(action.event, action.series_link_id, action.side, links)
    remote = provider.create(event, action.idempotency_key, marker=action.marker, tag=action.tag)
    if remote.event is None or not same_content(remote.event, event):
        # An earlier attempt made it with other content: reconcile, as after a 409.
        remote = provider.update(remote.id, event, remote.version)
    return remote


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
