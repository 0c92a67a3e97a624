"""The two interfaces every calendar system implements, and what it declares it can do.

- `CalendarAccount`, the account level: one connected account's calendars, a dedicated calendar
  made for the sessions, push channels opened, renewed and stopped, credentials refreshed.
- `CalendarProvider`, the calendar level: one calendar's changes, window, and idempotent writes.
- `Capabilities`: push or poll, how an account connects, what it can make; declared in each
  system's registry entry (`providers.registry`), never probed. How many writes a calendar
  takes at once is declared by the calendar itself (`write_concurrency`).

The calendar level speaks calsync's own event type (`sync.event.CanonicalEvent`, wrapped in
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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from providers.errors import ProviderError
from sync.event import CanonicalEvent
from sync.side import Side
from sync.snapshot import RemoteEvent, SideSnapshot

__all__ = [
    "AccountHooks",
    "AccountSource",
    "BatchWriter",
    "BeforeRequest",
    "CalendarAccount",
    "CalendarInfo",
    "CalendarProvider",
    "Capabilities",
    "ChangePage",
    "Channel",
    "ConnectMethod",
    "Credentials",
    "EventChange",
    "EventRemoval",
    "NewEvent",
    "RemoteEvent",
    "SyncWindow",
    "Write",
    "WriteOutcome",
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
    name: str = ""
    read_only: bool = False
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

    `write_concurrency` is how many writes it takes at once (`tasks.waves`): 1 for most.
    """

    @property
    def write_concurrency(self) -> int: ...

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


@dataclass(frozen=True)
class NewEvent:
    """A `create`, as one write of a batch."""

    event: CanonicalEvent
    idempotency_key: str
    marker: str
    tag: str | None = None


@dataclass(frozen=True)
class EventChange:
    """An `update`, as one write of a batch."""

    event_id: str
    event: CanonicalEvent
    if_match: str | None


@dataclass(frozen=True)
class EventRemoval:
    """A `delete`, as one write of a batch."""

    event_id: str
    if_match: str | None


Write = NewEvent | EventChange | EventRemoval
# What one write of a batch came to: the event as the provider now holds it (a create or an
# update), None (a delete), or the error that write alone met.
WriteOutcome = RemoteEvent | None | ProviderError


@runtime_checkable
class BatchWriter(Protocol):
    """A calendar that takes several writes in one request (Google batch, Graph `$batch`, Wix
    bulk calls). Each write keeps the single call's contract: the same derived ids and
    idempotency, the same If-Match and "already gone counts as done". (Wix's bulk cancel takes
    no revision: its removals check theirs by one read just before.)"""

    @property
    def batch_size(self) -> int:
        """The most writes one request carries."""
        ...

    def write_many(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        """One outcome per write, in order. An error of one write is its outcome; an error of
        the whole request (throttled, unauthorised, unreachable) is raised."""
        ...


class ConnectMethod(StrEnum):
    OAUTH = "OAUTH"  # the account owner signs in at the provider
    CREDENTIALS = "CREDENTIALS"  # a user name and password (CalDAV, an Apple app password)


@dataclass(frozen=True)
class Capabilities:
    """What a calendar system can do, declared in its registry entry.

    - `push`: it notifies changes on push channels; without push, its calendars are polled.
    - `dedicated_calendar`: it can make a calendar of its own for the sessions.
    - `primary_after_connect`: the primary calendar's id is only learnt by listing the
      account's calendars after connecting (Graph), not at connect time.
    """

    connect: ConnectMethod
    push: bool = False
    dedicated_calendar: bool = False
    primary_after_connect: bool = False


@dataclass(frozen=True)
class Credentials:
    """What an account stores (encrypted) to act again, and when its access token expires."""

    data: Mapping[str, Any]
    expires_at: datetime | None = None


@dataclass(frozen=True)
class AccountSource:
    """A connection as a provider needs it to open the account: no database row, plain values."""

    connection_id: str
    provider: str
    credentials: Mapping[str, Any]
    server_url: str | None = None



# Refreshed credentials, handed over as soon as a provider has them, to be stored at once.
CredentialsSaved = Callable[[Credentials], None]


@dataclass(frozen=True)
class AccountHooks:
    """What the caller lends an account: an HTTP client it may share (`httpx.Client`), a call
    before every request (counting, quota), and where refreshed credentials go."""

    http: Any = None
    before_request: BeforeRequest | None = None
    on_credentials: CredentialsSaved | None = None


@dataclass(frozen=True)
class Channel:
    """A push channel as the provider opened it. `secret` proves a notification genuine (a
    Google channel token, a Graph clientState, the local store's signing key)."""

    channel_id: str
    resource_id: str
    secret: str
    expires_at: datetime


@runtime_checkable
class CalendarAccount(Protocol):
    """One connected account of a calendar system. Methods a system's capabilities rule out
    raise `NotImplementedError` (a CalDAV account has no channels)."""

    def list_calendars(self) -> list[CalendarInfo]: ...

    def calendar(self, info: CalendarInfo, window: SyncWindow) -> CalendarProvider:
        """The calendar `info` names (its id, read-only flag, whether it is the primary one)."""
        ...

    def create_calendar(self, name: str, key: str) -> CalendarInfo:
        """A new calendar for the sessions; `key` makes a retry find the one it made."""
        ...

    def open_channel(self, calendar_id: str, address: str) -> Channel:
        """Ask for notifications of the calendar's changes at `address`."""
        ...

    def renew_channel(self, channel: Channel, calendar_id: str, address: str) -> Channel:
        """The channel that carries on: the same one extended, or a new one for the calendar
        (the old one then stopped). A channel the provider no longer has is replaced."""
        ...

    def stop_channel(self, channel: Channel) -> None:
        """Stop the notifications; a channel the provider no longer knows counts as stopped."""
        ...

    def refresh_credentials(self) -> Credentials:
        """New credentials ahead of expiry (OAuth); `PermanentError` when refused for good."""
        ...

    def close(self) -> None: ...

