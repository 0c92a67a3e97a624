"""What the planner sees of one side: remote events and whether the listing is complete."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sync.event import CanonicalEvent, ExternalCalendarOverrides
from sync.side import Side


@dataclass(frozen=True)
class RemoteEvent:
    """One event as a provider holds it.

    `event` is None for a deletion (a tombstone in a change feed). `version` is the provider's
    etag / revision / changeKey. `marker` is calsync's back-reference stamped on the events it
    creates (see `sync.link.Marker`); `tag` is the provider name on Wix busy blocks; `overrides`
    are the effective `externalCalendarOverrides` of a Wix session. `unreadable` says why an
    event that exists could not be read (its content is broken or lacks fields): the planner
    keeps its copy as last seen rather than take it for deleted.
    """

    id: str
    version: str | None
    event: CanonicalEvent | None
    modified: datetime | None = None
    marker: str | None = None
    tag: str | None = None
    overrides: ExternalCalendarOverrides | None = None
    unreadable: str | None = None

    @property
    def deleted(self) -> bool:
        return self.event is None and self.unreadable is None

    @classmethod
    def gone(cls, event_id: str, version: str | None = None) -> RemoteEvent:
        return cls(id=event_id, version=version, event=None)

    @classmethod
    def unread(cls, event_id: str, why: str, version: str | None = None) -> RemoteEvent:
        return cls(id=event_id, version=version, event=None, unreadable=why)


@dataclass(frozen=True)
class SideSnapshot:
    """One side's state for a plan.

    complete: every live event of the sync window is listed, so a linked event that is absent
    was deleted. Otherwise the snapshot is incremental: only changed events and explicit
    deletions are listed, and absence means "unchanged". Items may repeat (duplicated notices);
    the last one listed for an id counts.
    """

    side: Side
    items: tuple[RemoteEvent, ...]
    complete: bool

    @classmethod
    def full(cls, side: Side, items: Iterable[RemoteEvent]) -> SideSnapshot:
        return cls(side, tuple(items), complete=True)

    @classmethod
    def changes(cls, side: Side, items: Iterable[RemoteEvent]) -> SideSnapshot:
        return cls(side, tuple(items), complete=False)

    def by_id(self) -> dict[str, RemoteEvent]:
        latest: dict[str, RemoteEvent] = {}
        for item in self.items:
            latest[item.id] = item
        return latest
