"""A connection for the property tests: two providers, links in a dict, cursors in memory.

Reading, planning and applying are the production code (`tasks.apply`, `sync.plan`); only
where links and cursors live differs from a worker's run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from providers.base import CalendarProvider
from sync.actions import PlanResult
from sync.link import Link
from sync.planner import plan
from sync.policy import ConnectionPolicy
from sync.relevance import related
from sync.side import Side
from sync.snapshot import SideSnapshot
from tasks.apply import Applied, DictLinkStore, apply_plan, read_side


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
        if not (snapshots[Side.WIX].complete or snapshots[Side.EXTERNAL].complete):
            assert_related_links_suffice(snapshots, self.links, self.policy, allow_mass_delete,
                                         result)  # fmt: skip
        self.last_plan = result
        stores = {Side.WIX: self.wix, Side.EXTERNAL: self.external}
        applied = apply_plan(result, stores, DictLinkStore(self.links))
        if not applied.failed:
            self.cursors.update(next_cursors)
        return result, applied


def assert_related_links_suffice(
    snapshots: dict[Side, SideSnapshot], links: dict[str, Link], policy: ConnectionPolicy,
    allow_mass_delete: bool, expected: PlanResult,
) -> None:  # fmt: skip
    """An incremental run planned with only the links `sync.relevance` picks (what a worker
    loads) plans exactly what it plans with all of them."""
    wix, external = snapshots[Side.WIX], snapshots[Side.EXTERNAL]
    counts = {side: sum(link.id_on(side) is not None for link in links.values()) for side in Side}
    picked = related(links.values(), wix, external)
    got = plan(wix, external, picked, policy, allow_mass_delete=allow_mass_delete, linked=counts)
    assert (got.actions, got.conflicts, got.skipped) == (
        expected.actions, expected.conflicts, expected.skipped)  # fmt: skip
    assert [(type(e), e.args) for e in got.errors] == [(type(e), e.args) for e in expected.errors]
