"""`plan`: everything calsync decides for one connection, as a pure function.

Inputs: what each side shows now (complete or incremental), the links recorded by earlier
runs, and the connection's policy. Output: ordered actions, each with a reason code, plus the
conflicts decided, the changes skipped and flagged errors. Same inputs, same plan: link ids
and create keys are derived from the source events, and everything is visited in sorted order.
Series come before their instances, so an instance's copy can name its series' copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sync.actions import PlanResult
from sync.arrivals import plan_arrival, plan_leftovers
from sync.draft import Draft
from sync.errors import MassDeletionSuspected, SyncError
from sync.link import Link
from sync.observe import SideView, vanished
from sync.pair import plan_link
from sync.policy import ConnectionPolicy
from sync.reasons import Reason
from sync.side import Side
from sync.snapshot import RemoteEvent, SideSnapshot


def plan(
    wix: SideSnapshot,
    external: SideSnapshot,
    links: Sequence[Link],
    policy: ConnectionPolicy,
    *,
    allow_mass_delete: bool = False,
    linked: Mapping[Side, int] | None = None,
) -> PlanResult:
    """Plan one sync run. `allow_mass_delete` is an operator's confirmation, never a default.

    `links` may be only those the snapshots concern (`sync.relevance`) when they are
    incremental; `linked` then says how many events each side has linked in all, which the
    mass-deletion guard weighs the deletions against."""
    if wix.side is not Side.WIX or external.side is not Side.EXTERNAL:
        raise ValueError("plan() takes the Wix snapshot first, then the external one")
    snapshots = {Side.WIX: wix, Side.EXTERNAL: external}
    errors: list[SyncError] = []
    for side, snapshot in snapshots.items():
        seen, lost = vanished(snapshot, links)
        total = seen if linked is None else linked[side]
        if not allow_mass_delete and policy.mass_delete.trips(total, lost):
            errors.append(MassDeletionSuspected(side, total, lost))
    guarded = {e.side for e in errors if isinstance(e, MassDeletionSuspected)}
    views = {side: SideView(snap, links, side in guarded) for side, snap in snapshots.items()}
    draft = Draft(views, links, policy, errors)
    for side in sorted(guarded):
        _report_guarded(draft, snapshots[side], links)
    held = _hold_unreadable(draft)

    arrivals = sorted(
        ((side, item) for side in Side for item in draft.unlinked[side].arrivals),
        key=lambda pair: (_is_instance(pair[1]), pair[0].value, pair[1].id),
    )
    ordered = sorted(links, key=lambda link: (link.base.is_instance, link.link_id))
    for instances in (False, True):
        for link in ordered:
            if link.base.is_instance is instances and link.link_id not in held:
                plan_link(draft, link)
        for side, item in arrivals:
            if _is_instance(item) is instances:
                plan_arrival(draft, side, item)
    for side in Side:
        plan_leftovers(draft, side)
    return draft.result()


def _is_instance(item: RemoteEvent) -> bool:
    return item.event is not None and item.event.is_instance


def _hold_unreadable(draft: Draft) -> set[str]:
    """Report each unreadable event; the pairs they belong to wait, untouched, until the
    event reads again (a write to it could only overwrite what cannot be seen)."""
    held: set[str] = set()
    for side in Side:
        for item in draft.views[side].unreadable():
            link = draft.link_on(side, item.id)
            draft.skip(side, item.id, link, Reason.UNREADABLE)
            if link is not None:
                held.add(link.link_id)
    return held


def _report_guarded(draft: Draft, snapshot: SideSnapshot, links: Sequence[Link]) -> None:
    items = snapshot.by_id()
    for link in sorted(links, key=lambda link: link.link_id):
        event_id = link.id_on(snapshot.side)
        if event_id is None:
            continue
        item = items.get(event_id)
        if (item is None and snapshot.complete) or (item is not None and item.deleted):
            draft.skip(snapshot.side, event_id, link, Reason.MASS_DELETE_GUARD)
