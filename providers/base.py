"""The interface every calendar system implements (Wix, Google, Microsoft, CalDAV, memory).

It speaks calsync's own event type (`sync.event.CanonicalEvent`, wrapped in
`sync.snapshot.RemoteEvent`); each provider maps its API to it and back. Every write is
idempotent, so a retried run can never make a second copy or overwrite a concurrent edit:

- `create` takes an idempotency key and derives the event's id from it (Google event id,
  CalDAV href/UID, Graph transactionId, a Wix external key); a create retried with the same
  key returns the event the first attempt made instead of making another.
- `update` and `delete` take the version last seen (If-Match) and raise `PreconditionFailed`
  when the event changed since; `delete` of an event that is already gone counts as done.
- `list_changes(None)` lists the whole sync window; `list_changes(cursor)` lists what changed
  since (the current state of each changed event, deletions as tombstones) and raises
  `CursorExpired` when the provider forgot the cursor: the caller then lists everything and
  lets the planner reconcile against the links, never re-creating blindly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from sync.event import CanonicalEvent
from sync.side import Side
from sync.snapshot import RemoteEvent, SideSnapshot

__all__ = [
    "AlreadyExists",
    "BeforeRequest",
    "CalendarInfo",
    "CalendarProvider",
    "ChangePage",
    "CursorExpired",
    "NotFound",
    "PermanentError",
    "PermanentReason",
    "PreconditionFailed",
    "ProviderError",
    "RateLimited",
    "RemoteEvent",
    "SyncWindow",
    "TransientError",
]

# Called before every HTTP request a provider makes: counts the call and takes a token from the
# account's quota (it may sleep, or raise `RateLimited` when the wait is too long for a worker).
BeforeRequest = Callable[[], None]


@dataclass(frozen=True)
class SyncWindow:
    """The span of time calsync syncs; `list_changes(None)` lists what overlaps it."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class CalendarInfo:
    """One calendar of a connected account, as listing the account's calendars shows it."""

    remote_id: str
    name: str
    read_only: bool
    primary: bool = False
    time_zone: str | None = None


@dataclass(frozen=True)
class ChangePage:
    """One answer of `list_changes`. `complete`: a full listing (absence means deleted)."""

    changes: tuple[RemoteEvent, ...]
    next_cursor: str
    complete: bool

    def snapshot(self, side: Side) -> SideSnapshot:
        return SideSnapshot(side, self.changes, self.complete)


@runtime_checkable
class CalendarProvider(Protocol):
    """One calendar (a Wix staff schedule, or one external calendar) as calsync sees it.

    A provider that can take several writes at once also has `write_concurrency: int` (how
    many; `tasks.waves`). Without it, writes go one at a time.
    """

    @property
    def read_only(self) -> bool: ...

    def list_changes(self, cursor: str | None) -> ChangePage: ...

    def list_window(self, start: datetime, end: datetime) -> Sequence[RemoteEvent]: ...

    def get(self, event_id: str) -> RemoteEvent:
        """The event, or its tombstone if it was deleted; `NotFound` if never known."""
        ...

    def create(
        self,
        event: CanonicalEvent,
        idempotency_key: str,
        *,
        marker: str,
        tag: str | None = None,
    ) -> RemoteEvent:
        """Create (or find again) the event whose id derives from `idempotency_key`.

        `marker` is calsync's back-reference, stored where the provider keeps private
        properties; `tag` is the provider name a Wix busy block carries.
        """
        ...

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent: ...

    def delete(self, event_id: str, if_match: str | None) -> None: ...


class ProviderError(Exception):
    """Anything a provider call can fail with that calsync handles."""


class TransientError(ProviderError):
    """Try again later (network, 5xx); `retry_after` in seconds when the provider said."""

    def __init__(self, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """429, or Google's 403 rate-limit reasons."""


class PermanentReason(StrEnum):
    TOKEN_REVOKED = "TOKEN_REVOKED"  # invalid_grant: the user must reconnect
    FORBIDDEN = "FORBIDDEN"  # no write access (a read-only calendar), or no access at all
    CALENDAR_DELETED = "CALENDAR_DELETED"
    INVALID_EVENT = "INVALID_EVENT"  # the provider refuses this event's content


class PermanentError(ProviderError):
    """Retrying will not help; the connection (or the event) needs a person."""

    def __init__(self, reason: PermanentReason, message: str = "") -> None:
        super().__init__(message or reason.value)
        self.reason = reason


class PreconditionFailed(ProviderError):
    """412: the event changed since the version passed as If-Match."""


class NotFound(ProviderError):
    """404/410 on get or update. (On delete, a missing event counts as deleted.)"""


class AlreadyExists(ProviderError):
    """409 on create when the provider cannot hand back the existing event itself."""


class CursorExpired(ProviderError):
    """The change cursor (sync token, delta link, sync-collection token) is no longer valid."""
