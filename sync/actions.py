"""What a plan asks an executor to do, and the link each step leaves behind.

An executor applies the actions in order, each with an idempotent write: a create with its
idempotency key (a retry finds the first attempt's event; if its content differs, update it
with If-Match, as after a 409), an update or delete with If-Match (a concurrent edit fails the
step instead of being overwritten; a missing event on delete counts as done). An action with
a `series_link_id` first puts that link's event id on its side into the event's recurrence.
After each successful step it persists `action.settle(link, result)` (None: delete the link),
where `link` is the link it persisted last for the same link id in this run, else
`action.link`.
A run that stops midway therefore resumes from the last persisted link: finished writes come
back as echoes and are not repeated. A failed step persists nothing; the next plan sees the
same difference again: so a caller that reads change feeds advances its cursors only when
every action went through (or reads a full listing next). `RemoveOrphan` touches no link.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync.errors import SyncError
from sync.event import CanonicalEvent
from sync.link import Link
from sync.merge import Conflict
from sync.reasons import Reason
from sync.side import Side
from sync.snapshot import RemoteEvent


@dataclass(frozen=True)
class Create:
    """Write a new copy on `side`. For an instance, `series_link_id` names the link whose
    copy on `side` is the series: the executor puts that id into the event's recurrence."""

    side: Side
    link: Link
    event: CanonicalEvent
    idempotency_key: str
    marker: str
    tag: str | None
    series_link_id: str | None
    reason: Reason

    @property
    def link_id(self) -> str:
        return self.link.link_id

    def settle(self, link: Link, result: RemoteEvent | None) -> Link | None:
        assert result is not None, "a create returns the event it made"
        return link.written(self.side, result)


@dataclass(frozen=True)
class Update:
    side: Side
    target_id: str
    if_match: str | None
    link: Link
    event: CanonicalEvent
    series_link_id: str | None
    reason: Reason

    @property
    def link_id(self) -> str:
        return self.link.link_id

    def settle(self, link: Link, result: RemoteEvent | None) -> Link | None:
        assert result is not None, "an update returns the event as stored"
        return link.written(self.side, result)


@dataclass(frozen=True)
class Delete:
    """Delete the event on `side`; afterwards forget the link, or keep it as a tombstone."""

    side: Side
    target_id: str
    if_match: str | None
    link: Link
    forget: bool
    reason: Reason

    @property
    def link_id(self) -> str:
        return self.link.link_id

    def settle(self, link: Link, result: RemoteEvent | None) -> Link | None:
        return None if self.forget else link.without_copy(self.side)


@dataclass(frozen=True)
class SaveLink:
    """Bookkeeping only: record new versions or a new base; no remote write."""

    link: Link
    reason: Reason

    @property
    def link_id(self) -> str:
        return self.link.link_id

    def settle(self, link: Link, result: RemoteEvent | None) -> Link | None:
        return self.link


@dataclass(frozen=True)
class ForgetLink:
    """Both events of the pair are gone; the link has nothing left to say."""

    link: Link
    reason: Reason

    @property
    def link_id(self) -> str:
        return self.link.link_id

    def settle(self, link: Link, result: RemoteEvent | None) -> Link | None:
        return None


@dataclass(frozen=True)
class RemoveOrphan:
    """Delete a copy of ours that no link owns: its source is gone, or it is a second copy."""

    side: Side
    target_id: str
    if_match: str | None
    reason: Reason


Action = Create | Update | Delete | SaveLink | ForgetLink | RemoveOrphan
Write = Create | Update | Delete | RemoveOrphan


@dataclass(frozen=True)
class Skipped:
    """A change that was seen and deliberately not carried out (or not needed), and why."""

    side: Side
    event_id: str | None
    link_id: str | None
    reason: Reason


@dataclass(frozen=True)
class PlanResult:
    actions: tuple[Action, ...]
    conflicts: tuple[Conflict, ...]
    skipped: tuple[Skipped, ...]
    errors: tuple[SyncError, ...]

    @property
    def writes(self) -> tuple[Write, ...]:
        return tuple(
            a for a in self.actions if isinstance(a, Create | Update | Delete | RemoveOrphan)
        )
