"""A small executor for tests: reads two providers, plans, applies the plan, keeps the links.

It follows the contract in `sync.actions`: each write is idempotent, and after each successful
write the link is persisted at once, so a crash midway leaves exactly what was finished.
The real executor (with the database) lives in `tasks/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from providers.base import CalendarProvider, CursorExpired, NotFound, ProviderError
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
from sync.planner import plan
from sync.policy import ConnectionPolicy
from sync.side import Side
from sync.snapshot import RemoteEvent, SideSnapshot


@dataclass
class Applied:
    done: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, ProviderError]] = field(default_factory=list)


@dataclass
class Connection:
    """Everything a sync run of one connection needs between runs."""

    wix: CalendarProvider
    external: CalendarProvider
    policy: ConnectionPolicy
    links: dict[str, Link] = field(default_factory=dict)
    cursors: dict[Side, str | None] = field(default_factory=lambda: {s: None for s in Side})
    last_plan: PlanResult | None = None  # kept even when applying it crashed

    def store(self, side: Side) -> CalendarProvider:
        return self.wix if side is Side.WIX else self.external

    def sync(
        self, *, full: bool = False, allow_mass_delete: bool = False
    ) -> tuple[PlanResult, Applied]:
        """One run. Cursors advance only when every action went through: a failed action
        must meet the same changes again next time (a crash skips this line anyway)."""
        snapshots: dict[Side, SideSnapshot] = {}
        next_cursors: dict[Side, str] = {}
        for side in Side:
            snapshots[side], next_cursors[side] = read_side(
                self.store(side), side, None if full else self.cursors[side]
            )
        result = plan(
            snapshots[Side.WIX],
            snapshots[Side.EXTERNAL],
            list(self.links.values()),
            self.policy,
            allow_mass_delete=allow_mass_delete,
        )
        self.last_plan = result
        stores = {Side.WIX: self.wix, Side.EXTERNAL: self.external}
        applied = apply_plan(result, stores, self.links)
        if not applied.failed:
            self.cursors.update(next_cursors)
        return result, applied


def read_side(store: CalendarProvider, side: Side, cursor: str | None) -> tuple[SideSnapshot, str]:
    try:
        page = store.list_changes(cursor)
    except CursorExpired:
        page = store.list_changes(None)
    return page.snapshot(side), page.next_cursor


def apply_plan(
    result: PlanResult, stores: Mapping[Side, CalendarProvider], links: dict[str, Link]
) -> Applied:
    """Apply each action; provider errors fail that action only. A crash propagates."""
    applied = Applied()
    touched: dict[str, Link] = {}
    for action in result.actions:
        try:
            _apply(action, stores, links, touched)
        except ProviderError as error:
            applied.failed.append((action, error))
        else:
            applied.done.append(action)
    return applied


def _apply(
    action: Action,
    stores: Mapping[Side, CalendarProvider],
    links: dict[str, Link],
    touched: dict[str, Link],
) -> None:
    if isinstance(action, RemoveOrphan):
        stores[action.side].delete(action.target_id, action.if_match)
        return
    remote: RemoteEvent | None = None
    if isinstance(action, Create):
        event = _with_series(action.event, action.series_link_id, action.side, links)
        store = stores[action.side]
        remote = store.create(event, action.idempotency_key, marker=action.marker, tag=action.tag)
        if remote.event is None or not same_content(remote.event, event):
            # An earlier attempt made it with other content: reconcile, as after a 409.
            remote = store.update(remote.id, event, remote.version)
    elif isinstance(action, Update):
        event = _with_series(action.event, action.series_link_id, action.side, links)
        remote = stores[action.side].update(action.target_id, event, action.if_match)
    elif isinstance(action, Delete):
        stores[action.side].delete(action.target_id, action.if_match)
    else:
        assert isinstance(action, SaveLink | ForgetLink)
    settled = action.settle(touched.get(action.link_id, action.link), remote)
    if settled is None:
        links.pop(action.link_id, None)
        touched.pop(action.link_id, None)
    else:
        links[action.link_id] = touched[action.link_id] = settled


def _with_series(
    event: CanonicalEvent, series_link_id: str | None, side: Side, links: dict[str, Link]
) -> CanonicalEvent:
    if series_link_id is None or event.recurrence is None:
        return event
    series = links.get(series_link_id)
    series_id = None if series is None else series.id_on(side)
    if series_id is None:
        raise NotFound(f"the series of link {series_link_id} has no copy on {side} yet")
    return replace(event, recurrence=replace(event.recurrence, series_id=series_id))
