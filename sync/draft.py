"""The plan while it is being drafted: inputs indexed, outputs collected, shared decisions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sync.actions import Action, Delete, PlanResult, RemoveOrphan, SaveLink, Skipped
from sync.errors import SyncError
from sync.event import CanonicalEvent, ExternalCalendarOverrides
from sync.link import Link, Marker
from sync.mapping import copy_of
from sync.merge import Conflict
from sync.observe import Gone, SideView
from sync.policy import ConnectionPolicy
from sync.reasons import Reason
from sync.side import Side
from sync.snapshot import RemoteEvent


class Draft:
    def __init__(
        self,
        views: dict[Side, SideView],
        links: Sequence[Link],
        policy: ConnectionPolicy,
        errors: Sequence[SyncError],
    ) -> None:
        self.views = views
        self.policy = policy
        self.actions: list[Action] = []
        self.conflicts: list[Conflict] = []
        self.skipped: list[Skipped] = []
        self.errors = list(errors)
        self.links: dict[str, Link] = {}
        self.copy_planned: set[str] = set()  # link ids whose copy a Create in this plan makes
        self.removed: set[str] = set()  # link ids whose pair this plan removes
        self.deleting: dict[Side, set[str]] = {side: set() for side in Side}  # event ids
        self._by_side: dict[Side, dict[str, str]] = {side: {} for side in Side}
        for link in links:
            self.remember(link)
        self.unlinked = {side: self._sort_unlinked(side) for side in Side}

    def result(self) -> PlanResult:
        return PlanResult(
            tuple(self.actions), tuple(self.conflicts), tuple(self.skipped), tuple(self.errors)
        )

    def emit(self, action: Action) -> None:
        self.actions.append(action)
        if isinstance(action, SaveLink):
            self.remember(action.link)
        if isinstance(action, Delete | RemoveOrphan):
            self.deleting[action.side].add(action.target_id)

    def write_block(self, side: Side) -> Reason | None:
        """Why nothing may be written to `side` in this plan, or None."""
        if self.views[side].guarded:
            return Reason.MASS_DELETE_GUARD
        return self.policy.write_block(side)

    def flows_to(self, side: Side) -> bool:
        """Whether the connection lets changes reach `side` at all. Unlike `write_block`,
        this ignores the mass-deletion guard: the guard postpones writes, it does not turn
        a copy into a mirror whose edits are reverted."""
        return self.policy.write_block(side) is None

    def skip(self, side: Side, event_id: str | None, link: Link | None, reason: Reason) -> None:
        self.skipped.append(Skipped(side, event_id, link.link_id if link else None, reason))

    def marker(self, link_id: str) -> str:
        return Marker(self.policy.owner_id, link_id).encode()

    def is_ours(self, marker: Marker | None) -> bool:
        return marker is not None and marker.owner_id == self.policy.owner_id

    # -- links ------------------------------------------------------------------------

    def link_on(self, side: Side, event_id: str) -> Link | None:
        link_id = self._by_side[side].get(event_id)
        return None if link_id is None else self.links[link_id]

    def remember(self, link: Link) -> None:
        """Index a link as planned, so instances planned later find their series."""
        self.links[link.link_id] = link
        for side in Side:
            event_id = link.id_on(side)
            if event_id is not None:
                self._by_side[side][event_id] = link.link_id

    # -- series -----------------------------------------------------------------------

    def copy_for(
        self, origin: Side, event: CanonicalEvent, overrides: ExternalCalendarOverrides | None
    ) -> tuple[CanonicalEvent, str | None]:
        """The other side's copy of an origin event, its series id translated through the
        series' link; also that link's id (None for an event that is not an instance)."""
        copy = copy_of(origin, event, self.policy, overrides)
        rec = copy.recurrence
        if rec is None or rec.series_id is None:
            return copy, None
        series = self.link_on(origin, rec.series_id)
        if series is None:
            return copy, None
        target_id = series.id_on(origin.other)
        return replace(copy, recurrence=replace(rec, series_id=target_id)), series.link_id

    def series_of(self, side: Side, event: CanonicalEvent) -> Link | None:
        """The link of the series an instance on `side` belongs to."""
        rec = event.recurrence
        if rec is None or rec.series_id is None:
            return None
        return self.link_on(side, rec.series_id)

    def series_missing(self, side: Side, event: CanonicalEvent) -> bool:
        """An instance on `side` whose series has no copy on the other side, nor one planned."""
        if not event.is_instance:
            return False
        if self.series_going(side, event):
            return True
        series = self.series_of(side, event)
        if series is None or series.link_id in self.removed:
            return True
        copy_id = series.id_on(side.other)
        gone = copy_id is None or series.tombstone or copy_id in self.deleting[side.other]
        if not gone:
            gone = isinstance(self.views[side.other].observe(series), Gone)
        return gone and series.link_id not in self.copy_planned

    def series_going(self, side: Side, event: CanonicalEvent) -> bool:
        """An instance whose series this plan deletes on the same side: it goes along."""
        rec = event.recurrence
        return rec is not None and rec.series_id in self.deleting[side]

    # -- events no link knows ---------------------------------------------------------

    def claim(self, side: Side, link_id: str) -> RemoteEvent | None:
        """Our copy for `link_id` that an interrupted run made before it recorded the link."""
        return self.unlinked[side].copies.pop(link_id, None)

    def _sort_unlinked(self, side: Side) -> Unlinked:
        found = Unlinked()
        for item in sorted(self.views[side].unlinked(), key=lambda item: item.id):
            marker = Marker.parse(item.marker)
            if item.event is None:
                found.deletions.append(item)
            elif marker is None or self._inherited(side, item.event, marker):
                found.arrivals.append(item)
            elif not self.is_ours(marker):
                found.foreign.append(item)
            elif marker.link_id in found.copies:
                found.duplicates.append(item)
            else:
                found.copies[marker.link_id] = item
        return found

    def _inherited(self, side: Side, event: CanonicalEvent, marker: Marker) -> bool:
        # Providers copy a series' properties to its exceptions, so an exception of our copy
        # carries the copy's marker; it was still made on this side, by a person.
        rec = event.recurrence
        if rec is None or rec.series_id is None:
            return False
        series = self.link_on(side, rec.series_id)
        return series is not None and series.link_id == marker.link_id


@dataclass
class Unlinked:
    """A side's events that no link knows, sorted by what they are."""

    arrivals: list[RemoteEvent] = field(default_factory=list)  # new: to be copied
    copies: dict[str, RemoteEvent] = field(default_factory=dict)  # ours, by link id
    duplicates: list[RemoteEvent] = field(default_factory=list)  # ours, a second time
    foreign: list[RemoteEvent] = field(default_factory=list)  # copies made for another calendar
    deletions: list[RemoteEvent] = field(default_factory=list)  # notices for unknown events
