"""How the planner reads one side: what a link's event looks like now, and whether it changed.

Change detection follows vdirsyncer: an event changed iff its version differs from the one
the link recorded AND its content differs from the content the link recorded. A version bump
without a content change (a server re-rendering the event) is not an edit, and our own write
coming back with the version we recorded is an echo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sync.event import CanonicalEvent, same_content
from sync.link import Link
from sync.side import Side
from sync.snapshot import RemoteEvent, SideSnapshot


@dataclass(frozen=True)
class Present:
    """The event exists. `listed`: it was in the snapshot, not rebuilt from the link."""

    remote: RemoteEvent
    event: CanonicalEvent
    changed: bool
    listed: bool


@dataclass(frozen=True)
class Gone:
    event_id: str


@dataclass(frozen=True)
class NoCopy:
    """The link holds no event on this side (a tombstone)."""


Observation = Present | Gone | NoCopy


def is_changed(remote: RemoteEvent, version: str | None, seen: CanonicalEvent | None) -> bool:
    if remote.event is None or seen is None:
        return True
    if version is not None and remote.version == version:
        return False
    return not same_content(remote.event, seen)


class SideView:
    """One side's snapshot indexed for the planner. A guarded side (mass-deletion guard) shows
    nothing: every linked event reads as unchanged and nothing on it is new."""

    def __init__(self, snapshot: SideSnapshot, links: Sequence[Link], guarded: bool) -> None:
        self.side = snapshot.side
        self.guarded = guarded
        self.complete = snapshot.complete and not guarded
        self.items = {} if guarded else snapshot.by_id()
        self.linked_ids = {i for link in links if (i := link.id_on(self.side)) is not None}

    def observe(self, link: Link) -> Observation:
        event_id = link.id_on(self.side)
        if event_id is None:
            return NoCopy()
        item = self.items.get(event_id)
        if item is None:
            return Gone(event_id) if self.complete else self._as_recorded(link, event_id)
        if item.unreadable is not None:
            return self._as_recorded(link, event_id)
        if item.event is None:
            return Gone(event_id)
        seen = link.seen_on(self.side)
        changed = is_changed(item, link.version_on(self.side), seen)
        return Present(item, item.event, changed, listed=True)

    def unlinked(self) -> list[RemoteEvent]:
        return [
            item
            for i, item in self.items.items()
            if i not in self.linked_ids and item.unreadable is None
        ]

    def unreadable(self) -> list[RemoteEvent]:
        return sorted((i for i in self.items.values() if i.unreadable), key=lambda i: i.id)

    def _as_recorded(self, link: Link, event_id: str) -> Present:
        # Absent from an incremental snapshot, or unreadable: as the link recorded it.
        seen = link.seen_on(self.side) or link.base
        overrides = link.wix_overrides if self.side is Side.WIX else None
        remote = RemoteEvent(event_id, link.version_on(self.side), seen, overrides=overrides)
        return Present(remote, seen, changed=False, listed=False)


def vanished(snapshot: SideSnapshot, links: Sequence[Link]) -> tuple[int, int]:
    """(linked, vanished): how many linked events this side had, and how many it lost now."""
    items = snapshot.by_id()
    ids = [i for link in links if (i := link.id_on(snapshot.side)) is not None]
    lost = 0
    for event_id in ids:
        item = items.get(event_id)
        if (item is None and snapshot.complete) or (item is not None and item.deleted):
            lost += 1
    return len(ids), lost
