"""Events a provider lists but cannot read: their copies are kept, and each is reported.

A complete listing cannot tell an unreadable event from a deleted one when the event's id is
not the one it failed under (a CalDAV resource holding someone else's series lists one item per
occurrence). So when a complete listing holds unreadable items, the linked ids it lacks are
asked for one by one: what comes back unreadable is kept, what is gone stays gone.

Each calendar keeps the unreadable items of its last runs (`ExternalCalendar.unreadable`),
keyed by side and event id, until the item is read again, deleted, or missing from a complete
listing; the connection's status shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from providers.base import CalendarProvider
from sync.link import Link
from sync.side import Side
from sync.snapshot import SideSnapshot

# Enough for an operator to see what is wrong; a calendar with more has a bigger problem.
KEPT = 100


def settle(
    every_link: Callable[[], Sequence[Link]],
    providers: Mapping[Side, CalendarProvider],
    *snapshots: SideSnapshot,
) -> list[SideSnapshot]:
    """The snapshots, with the linked ids a complete one lacks added when they are unreadable."""
    if not any(s.complete and _has_unreadable(s) for s in snapshots):
        return list(snapshots)
    every = every_link()
    return [_settled(s, providers[s.side], every) if s.complete else s for s in snapshots]


def _settled(
    snapshot: SideSnapshot, provider: CalendarProvider, links: Sequence[Link]
) -> SideSnapshot:
    if not _has_unreadable(snapshot):
        return snapshot
    listed = snapshot.by_id()
    absent = sorted({i for link in links if (i := link.id_on(snapshot.side)) and i not in listed})
    found = [provider.get(event_id) for event_id in absent]
    kept = tuple(item for item in found if item.unreadable)
    return SideSnapshot(snapshot.side, snapshot.items + kept, complete=True)


def _has_unreadable(snapshot: SideSnapshot) -> bool:
    return any(item.unreadable for item in snapshot.items)


def noted(
    before: Mapping[str, Any] | None, snapshots: list[SideSnapshot], now: datetime
) -> dict[str, Any]:
    """The calendar's unreadable items after a run that read these snapshots."""
    after = dict(before or {})
    for snapshot in snapshots:
        side = snapshot.side.value
        if snapshot.complete:
            after = {k: v for k, v in after.items() if v.get("side") != side}
        for item in snapshot.items:
            key = f"{side}:{item.id}"
            if item.unreadable is None:
                after.pop(key, None)
                continue
            since = (before or {}).get(key, {}).get("since") or now.isoformat()
            after[key] = {"side": side, "eventId": item.id, "reason": item.unreadable,
                          "since": since}  # fmt: skip
    if len(after) > KEPT:
        after = dict(sorted(after.items(), key=lambda kv: kv[1]["since"])[:KEPT])
    return after
