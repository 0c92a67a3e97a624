"""An in-memory calendar that implements `CalendarProvider`, with faults on demand.

Two kinds of callers: calsync, through the provider interface (`create`, `update`, `delete`,
`list_changes`, ...), where the faults apply; and a person using the calendar directly
(`add`, `edit`, `remove`, `touch`), which always works, also on a read-only calendar.

Faults (all deterministic: notice faults draw from a `random.Random(seed)`):
- failing writes: the next `Faults.fail_writes` calsync writes raise `Faults.failure`;
- stale etags: `touch` bumps a version without changing content; `Faults.stale_etags` is
  the chance that a write finds its If-Match stale that way (412, `PreconditionFailed`);
- lost, duplicated and late change notices (`drop_notices`, `duplicate_notices`,
  `delay_notices`, `shuffle_notices`); a late notice comes with the next page;
- a crash midway: `crash_after_writes` counts down the successful calsync writes; at zero,
  the next write raises `SimulatedCrash`, before it is applied or, with
  `crash_after_applying`, after (the reply is lost); one crash per setting;
- a read-only calendar: every calsync write raises `PermanentError(FORBIDDEN)`;
- `expire_cursors`: the next incremental listing raises `CursorExpired`.

Deleting a series deletes its instances, as Google and Wix do; creating or updating an
instance whose series does not exist raises `NotFound`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from providers.base import ChangePage
from providers.errors import (
    CursorExpired,
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    ProviderError,
    TransientError,
)
from sync.event import CanonicalEvent, ExternalCalendarOverrides, as_instant
from sync.snapshot import RemoteEvent

Clock = Callable[[], datetime]


class SimulatedCrash(Exception):
    """The process died here. Deliberately not a ProviderError: nothing may swallow it."""


def ticking_clock(start: datetime | None = None, step: timedelta = timedelta(seconds=1)) -> Clock:
    """A clock that advances `step` on every reading: distinct, ordered modification times."""
    now = [start or datetime(2025, 1, 1, tzinfo=UTC)]

    def read() -> datetime:
        now[0] += step
        return now[0]

    return read


@dataclass
class Faults:
    fail_writes: int = 0
    failure: ProviderError | None = None  # default: TransientError
    stale_etags: float = 0.0
    drop_notices: float = 0.0
    duplicate_notices: float = 0.0
    delay_notices: float = 0.0
    shuffle_notices: bool = False
    crash_after_writes: int | None = None
    crash_after_applying: bool = False


@dataclass
class _Stored:
    event: CanonicalEvent | None  # None: deleted (kept for `get` and the change feed)
    version: int
    modified: datetime
    marker: str | None = None
    tag: str | None = None
    overrides: ExternalCalendarOverrides | None = None


class MemoryCalendar:
    write_concurrency = 1  # one write at a time

    def __init__(
        self,
        name: str = "memory",
        *,
        read_only: bool = False,
        clock: Clock | None = None,
        seed: int = 0,
        faults: Faults | None = None,
    ) -> None:
        self.name = name
        self._read_only = read_only
        self.clock = clock or ticking_clock()
        self.faults = faults or Faults()
        self.rng = random.Random(seed)
        self.writes = 0  # successful calsync writes, for tests and read-only checks
        self._events: dict[str, _Stored] = {}
        self._versions = 0
        self._feed: list[str] = []  # one notice (event id) per change, in order
        self._late: list[str] = []
        self._epoch = 0  # cursors carry it; expiring them starts a new one
        self._user_ids = 0

    # -- the provider interface ----------------------------------------------------

    @property
    def read_only(self) -> bool:
        return self._read_only

    def list_changes(self, cursor: str | None) -> ChangePage:
        position = f"{self._epoch}:{len(self._feed)}"
        if cursor is None:
            self._late.clear()
            live = tuple(self._remote(i) for i in sorted(self._events) if self._is_live(i))
            return ChangePage(live, position, complete=True)
        notices = self._deliver(self._late + self._feed[self._offset(cursor) :])
        return ChangePage(tuple(self._remote(i) for i in notices), position, complete=False)

    def list_window(self, start: datetime, end: datetime) -> list[RemoteEvent]:
        return [
            self._remote(i)
            for i in sorted(self._events)
            if self._is_live(i) and _overlaps(self._stored(i).event, start, end)
        ]

    def get(self, event_id: str) -> RemoteEvent:
        if event_id not in self._events:
            raise NotFound(f"{self.name}: {event_id}")
        return self._remote(event_id)

    def create(
        self,
        event: CanonicalEvent,
        idempotency_key: str,
        *,
        marker: str,
        tag: str | None = None,
    ) -> RemoteEvent:
        event_id = f"{self.name}-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]}"
        self._before_write(event_id)
        if self._is_live(event_id):
            return self._after_write(event_id)  # a retry: the first attempt's event
        self._check_series(event)
        # A deleted id is written again, as a CalDAV PUT to the same href would.
        self._events[event_id] = _Stored(event, self._next_version(), self.clock(), marker, tag)
        return self._after_write(event_id, changed=True)

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        if not self._is_live(event_id):
            raise NotFound(f"{self.name}: {event_id}")
        self._before_write(event_id, if_match)
        self._check_series(event)
        stored = self._stored(event_id)
        stored.event, stored.version = event, self._next_version()
        stored.modified = self.clock()
        return self._after_write(event_id, changed=True)

    def delete(self, event_id: str, if_match: str | None) -> None:
        if not self._is_live(event_id):
            return  # already gone: done
        self._before_write(event_id, if_match)
        self._tombstone(event_id)
        self._after_write(event_id, changed=False)

    # -- a person using the calendar directly --------------------------------------

    def add(
        self,
        event: CanonicalEvent,
        *,
        marker: str | None = None,
        tag: str | None = None,
        overrides: ExternalCalendarOverrides | None = None,
    ) -> RemoteEvent:
        self._user_ids += 1
        event_id = f"{self.name}-u{self._user_ids}"
        stored = _Stored(event, self._next_version(), self.clock(), marker, tag, overrides)
        self._events[event_id] = stored
        self._feed.append(event_id)
        return self._remote(event_id)

    def edit(self, event_id: str, event: CanonicalEvent) -> RemoteEvent:
        stored = self._stored(event_id)
        stored.event, stored.version = event, self._next_version()
        stored.modified = self.clock()
        self._feed.append(event_id)
        return self._remote(event_id)

    def set_overrides(
        self, event_id: str, overrides: ExternalCalendarOverrides | None
    ) -> RemoteEvent:
        stored = self._stored(event_id)
        stored.overrides, stored.version = overrides, self._next_version()
        stored.modified = self.clock()
        self._feed.append(event_id)
        return self._remote(event_id)

    def remove(self, event_id: str) -> None:
        self._stored(event_id)
        self._tombstone(event_id)

    def touch(self, event_id: str) -> RemoteEvent:
        """A new version, same content: what a server re-rendering an event does."""
        self._stored(event_id).version = self._next_version()
        self._feed.append(event_id)
        return self._remote(event_id)

    def expire_cursors(self) -> None:
        """Every cursor handed out so far stops working (a 410 from Google, say)."""
        self._epoch += 1
        self._late.clear()

    # -- inspection ----------------------------------------------------------------

    def events(self) -> dict[str, RemoteEvent]:
        """Every live event, by id."""
        return {i: self._remote(i) for i in sorted(self._events) if self._is_live(i)}

    def __iter__(self) -> Iterator[RemoteEvent]:
        return iter(self.events().values())

    # -- internals -----------------------------------------------------------------

    def _before_write(self, event_id: str, if_match: str | None = None) -> None:
        faults = self.faults
        if self._read_only:
            raise PermanentError(PermanentReason.FORBIDDEN, f"{self.name} is read-only")
        if faults.crash_after_writes == 0 and not faults.crash_after_applying:
            faults.crash_after_writes = None
            raise SimulatedCrash(f"{self.name}: died before write {self.writes + 1}")
        if faults.fail_writes > 0:
            faults.fail_writes -= 1
            raise faults.failure or TransientError(f"{self.name}: injected failure")
        if if_match is not None and faults.stale_etags and self.rng.random() < faults.stale_etags:
            self.touch(event_id)
        stale = if_match is not None and if_match != self._remote(event_id).version
        if stale and self._is_live(event_id):
            raise PreconditionFailed(f"{self.name}: {event_id} changed since {if_match}")

    def _after_write(self, event_id: str, *, changed: bool = False) -> RemoteEvent:
        if changed:
            self._feed.append(event_id)
        self.writes += 1
        faults = self.faults
        if faults.crash_after_writes == 0:  # only reached when crashing after applying
            faults.crash_after_writes = None
            raise SimulatedCrash(f"{self.name}: died after write {self.writes}, reply lost")
        if faults.crash_after_writes is not None:
            faults.crash_after_writes -= 1
        return self._remote(event_id)

    def _offset(self, cursor: str) -> int:
        epoch, _, offset = cursor.partition(":")
        valid = epoch == str(self._epoch) and offset.isdigit() and int(offset) <= len(self._feed)
        if not valid:
            raise CursorExpired(f"{self.name}: cursor {cursor!r} is no longer valid")
        return int(offset)

    def _deliver(self, notices: list[str]) -> list[str]:
        faults, rng = self.faults, self.rng
        self._late = []
        delivered: list[str] = []
        for event_id in notices:
            if faults.drop_notices and rng.random() < faults.drop_notices:
                continue
            if faults.delay_notices and rng.random() < faults.delay_notices:
                self._late.append(event_id)
                continue
            delivered.append(event_id)
            if faults.duplicate_notices and rng.random() < faults.duplicate_notices:
                delivered.append(event_id)
        if faults.shuffle_notices:
            rng.shuffle(delivered)
        return delivered

    def _tombstone(self, event_id: str) -> None:
        stored = self._stored(event_id)
        stored.event, stored.version = None, self._next_version()
        stored.modified = self.clock()
        self._feed.append(event_id)
        for instance_id in self._instances_of(event_id):
            self._tombstone(instance_id)  # as providers do: a series takes its instances along

    def _instances_of(self, series_id: str) -> list[str]:
        return [
            i
            for i, stored in sorted(self._events.items())
            if stored.event is not None
            and stored.event.recurrence is not None
            and stored.event.recurrence.series_id == series_id
        ]

    def _check_series(self, event: CanonicalEvent) -> None:
        rec = event.recurrence
        if rec is not None and rec.series_id is not None and not self._is_live(rec.series_id):
            raise NotFound(f"{self.name}: no series {rec.series_id}")

    def _next_version(self) -> int:
        self._versions += 1
        return self._versions

    def _is_live(self, event_id: str) -> bool:
        stored = self._events.get(event_id)
        return stored is not None and stored.event is not None

    def _stored(self, event_id: str) -> _Stored:
        try:
            return self._events[event_id]
        except KeyError:
            raise NotFound(f"{self.name}: {event_id}") from None

    def _remote(self, event_id: str) -> RemoteEvent:
        stored = self._stored(event_id)
        return RemoteEvent(
            id=event_id,
            version=f'"{stored.version}"',
            event=stored.event,
            modified=stored.modified,
            marker=stored.marker,
            tag=stored.tag,
            overrides=stored.overrides,
        )


def _overlaps(event: CanonicalEvent | None, start: datetime, end: datetime) -> bool:
    if event is None:
        return False
    return as_instant(event.start) < end and as_instant(event.end) > start
