"""Group commit for push notices.

Every request hands its genuine notices to one queue and waits. A recording thread takes
whatever has gathered, records it with one statement that commits itself, hands the new work
to the broker (one gate round trip, one producer), and only then wakes the requests: an answer
still follows the commit, so an acknowledged notice is never lost. Under load one round trip
to the database carries many notices; alone, a notice waits for nobody.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import queue
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from api.webhooks.inbox import enqueue_recorded, to_sweeper
from models.enums import InboxStatus
from models.notifications import Arrival, Recorded, record_live, recorded_keys
from providers.push import ChannelEvent
from tasks.enqueue import request_channel_mend

log = logging.getLogger(__name__)

MENDS = (ChannelEvent.RENEW, ChannelEvent.REOPEN)


class Fate(StrEnum):
    RECORDED = "recorded"  # new, and work was asked for
    ECHO = "echo"  # new, but the echo of calsync's own write: recorded as done
    DUPLICATE = "duplicate"  # seen before under the same key
    STALE = "stale"  # of a channel that no longer asks for work


@dataclass(frozen=True)
class Entry:
    """One genuine notice to record, and what it asks for once recorded."""

    arrival: Arrival
    event: ChannelEvent


@dataclass
class _Waiting:
    entries: Sequence[Entry]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[Fate]]

    def settle(self, fates: list[Fate] | BaseException) -> None:
        with contextlib.suppress(RuntimeError):  # its loop has closed: nobody is waiting
            self.loop.call_soon_threadsafe(_settle, self.future, fates)


def _settle(future: asyncio.Future[list[Fate]], fates: list[Fate] | BaseException) -> None:
    if future.cancelled():
        return
    if isinstance(fates, BaseException):
        future.set_exception(fates)
    else:
        future.set_result(fates)


class Intake:
    """The queue and its recording threads, `size` per process on their own connections, so
    one gathering is recorded while the one before waits for its commit. Threads start on
    demand and end after `idle` seconds without work: an app that is dropped leaves nothing
    behind."""

    def __init__(self, state: Any, size: int = 2, most: int = 500, idle: float = 10.0) -> None:
        self.state, self.size, self.most, self.idle = state, size, most, idle
        self.waiting: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self.running = 0
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()
        OPEN.add(self)

    async def record(self, entries: Sequence[Entry]) -> list[Fate]:
        """The fate of each entry, once it is committed and its work handed over."""
        if not entries:
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Fate]] = loop.create_future()
        with self.lock:  # threads decide to end under the same lock: none is left waiting
            self.waiting.put(_Waiting(entries, loop, future))
            self.threads = [t for t in self.threads if t.is_alive()]
            while self.running < self.size:
                thread = threading.Thread(target=self._run, name="calsync-intake", daemon=True)
                thread.start()
                self.threads.append(thread)
                self.running += 1
        return await future

    def close(self, timeout: float = 5.0) -> None:
        """End the recording threads once what is queued is recorded."""
        with self.lock:
            threads, self.threads = self.threads, []
            for _ in range(self.running):  # threads that have not yet decided to end
                self.waiting.put(None)
        for thread in threads:
            thread.join(timeout)

    def _run(self) -> None:
        db: Connection | None = None
        try:
            while (gathered := self._gather()) is not None:
                db = self._take(db, gathered)
        finally:
            if db is not None:
                db.close()

    def _gather(self) -> list[_Waiting] | None:
        """What has gathered, waiting for the first; None once idle for too long or closed."""
        try:
            first = self.waiting.get(timeout=self.idle)
        except queue.Empty:
            with self.lock:
                if self.waiting.empty():
                    self.running -= 1
                    return None
            first = self.waiting.get()
        if first is None:
            with self.lock:
                self.running -= 1
            return None
        gathered, count = [first], len(first.entries)
        while count < self.most:
            try:
                more = self.waiting.get_nowait()
            except queue.Empty:
                break
            if more is None:  # a close: leave it for a thread to end on
                self.waiting.put(None)
                break
            gathered.append(more)
            count += len(more.entries)
        return gathered

    def _take(self, db: Connection | None, gathered: list[_Waiting]) -> Connection | None:
        """Record a gathering and wake its requests; the connection to use next time."""
        try:
            if db is None:  # each statement commits itself: one round trip, not two
                db = self.state.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            fates = take(self.state, db, [w.entries for w in gathered])
        except Exception as error:  # each request answers it as its own
            if db is not None:  # the next gathering starts on a fresh connection
                db.close()
            for waiting in gathered:
                waiting.settle(error)
            return None
        for waiting, found in zip(gathered, fates, strict=True):
            waiting.settle(found)
        return db


OPEN: weakref.WeakSet[Intake] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Threads end before the interpreter does, not in the middle of its shutdown."""
    for open_intake in list(OPEN):
        open_intake.close(timeout=1.0)


def intake(state: Any) -> Intake:
    if getattr(state, "intake", None) is None:
        state.intake = Intake(state)
    found: Intake = state.intake
    return found


def take(state: Any, db: Connection, requests: Sequence[Sequence[Entry]]) -> list[list[Fate]]:
    """Record the notices of several requests at once (`db` commits each statement), then ask
    for their work; the fate of each notice, request by request."""
    entries = [entry for request in requests for entry in request]
    new = record_live(db, [e.arrival for e in entries])
    missing = [e.arrival for e in entries if _key(e.arrival) not in new]
    seen = {(provider, key) for provider in {a.provider for a in missing}
            for key in recorded_keys(db, provider, [a.key for a in missing
                                                    if a.provider == provider])}  # fmt: skip
    fates = _fates(entries, new, seen)
    _hand_over(state, [(e, new[_key(e.arrival)]) for e, f in zip(entries, fates, strict=True)
                       if f is Fate.RECORDED])  # fmt: skip
    left = iter(fates)
    return [[next(left) for _ in request] for request in requests]


def _key(arrival: Arrival) -> tuple[str, str]:
    return arrival.provider, arrival.key


def _fates(entries: Sequence[Entry], new: dict[tuple[str, str], Recorded],
           seen: set[tuple[str, str]]) -> list[Fate]:  # fmt: skip
    """In order: the first notice of a new row owns it; one sent again, even in the same
    gathering, is a duplicate."""
    fates, owned = [], set()
    for entry in entries:
        key = _key(entry.arrival)
        got = new.get(key)
        if got is None or key in owned:
            fates.append(Fate.DUPLICATE if got is not None or key in seen else Fate.STALE)
        else:
            owned.add(key)
            fates.append(Fate.ECHO if got.status is InboxStatus.DONE else Fate.RECORDED)
    return fates


def _hand_over(state: Any, recorded: Sequence[tuple[Entry, Recorded]]) -> None:
    """A mend for a channel the system says needs one, else one debounced sync per calendar
    (`enqueue_recorded`); rows the broker did not take go to the sweeper."""
    refused = [got.item for entry, got in recorded if entry.event in MENDS
               and not request_channel_mend(entry.arrival.channel_id, entry.event)]  # fmt: skip
    to_sweeper(state, refused)
    enqueue_recorded(state, [(got.item, got.calendar_id) for entry, got in recorded
                             if entry.event not in MENDS])  # fmt: skip
