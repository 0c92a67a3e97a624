"""Counts and times every call to a calendar system, for the API's /metrics.

Accounts and calendars are wrapped where tasks open them (`tasks/accounts.py`, the Wix side in
`tasks/sides.py`), so every call of the provider interfaces is timed without the providers
knowing. The tallies stay in the process and are added to Redis (`config/metrics.py`) in one
pipelined call at most once a second and after each task: a call costs a clock read and a
dictionary update. A metrics failure is logged and never fails the call it measured.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

import redis
from celery.signals import task_postrun

from config.metrics import CALLS_KEY, SECONDS_KEY, SUM_FIELD, bucket_of, field
from providers.base import (
    BatchWriter,
    CalendarAccount,
    CalendarInfo,
    CalendarProvider,
    ChangePage,
    Channel,
    Credentials,
    RemoteEvent,
    SyncWindow,
    Write,
    WriteOutcome,
)
from providers.errors import (
    AlreadyExists,
    CursorExpired,
    NotFound,
    PermanentError,
    PreconditionFailed,
    RateLimited,
    TransientError,
)
from sync.event import CanonicalEvent
from tasks.context import WorkerContext

log = logging.getLogger(__name__)

# The Wix side of every connection is not a registry entry; its calls go under this name.
WIX = "wix"
FLUSH_EVERY = 1.0  # seconds
WARN_EVERY = 60.0  # seconds between two warnings that Redis refused the tallies
T = TypeVar("T")

# Most specific first: RateLimited is a TransientError.
ERROR_STATUS: tuple[tuple[type[BaseException], str], ...] = (
    (RateLimited, "throttled"), (TransientError, "transient"), (PermanentError, "permanent"),
    (NotFound, "not_found"), (PreconditionFailed, "conflict"), (AlreadyExists, "conflict"),
    (CursorExpired, "cursor_expired"),
)  # fmt: skip


def status_of(error: BaseException) -> str:
    return next((status for kind, status in ERROR_STATUS if isinstance(error, kind)), "error")


class ProviderCalls:
    """One process's tallies, on their way to Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "", flush_every: float = FLUSH_EVERY
                 ) -> None:  # fmt: skip
        self.client = client
        self.calls_key, self.seconds_key = prefix + CALLS_KEY, prefix + SECONDS_KEY
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()  # provider|operation|status -> calls
        self._buckets: Counter[str] = Counter()  # provider|operation|bucket -> calls
        self._seconds: defaultdict[str, float] = defaultdict(float)  # provider|operation|sum
        self._flushed_at = time.monotonic()
        self._warned_at = -WARN_EVERY
        _every.add(self)

    def record(self, provider: str, operation: str, status: str, seconds: float) -> None:
        with self._lock:
            self._calls[field(provider, operation, status)] += 1
            self._buckets[field(provider, operation, str(bucket_of(seconds)))] += 1
            self._seconds[field(provider, operation, SUM_FIELD)] += seconds
            due = time.monotonic() - self._flushed_at >= self.flush_every
        if due:
            self.flush()

    @contextmanager
    def timed(self, provider: str, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except BaseException as error:
            self.record(provider, operation, status_of(error), time.perf_counter() - started)
            raise
        self.record(provider, operation, "ok", time.perf_counter() - started)

    def flush(self) -> None:
        """Add the tallies to Redis in one round trip; kept for the next try if it fails."""
        with self._lock:
            calls, buckets, seconds = self._calls, self._buckets, self._seconds
            self._calls, self._buckets, self._seconds = Counter(), Counter(), defaultdict(float)
            self._flushed_at = time.monotonic()
        if not calls:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for name, count in calls.items():
                pipe.hincrby(self.calls_key, name, count)
            for name, count in buckets.items():
                pipe.hincrby(self.seconds_key, name, count)
            for name, total in seconds.items():
                pipe.hincrbyfloat(self.seconds_key, name, total)
            pipe.execute()
        except (redis.RedisError, OSError) as error:
            self._keep(calls, buckets, seconds, error)

    def _keep(self, calls: Counter[str], buckets: Counter[str], seconds: dict[str, float],
              error: Exception) -> None:  # fmt: skip
        with self._lock:
            self._calls.update(calls)
            self._buckets.update(buckets)
            for name, total in seconds.items():
                self._seconds[name] += total
            warn = time.monotonic() - self._warned_at >= WARN_EVERY
            if warn:
                self._warned_at = time.monotonic()
        if warn:
            log.warning("provider call metrics not saved: %s", error)


_every: weakref.WeakSet[ProviderCalls] = weakref.WeakSet()


@lru_cache(maxsize=64)
def calls_for(client: redis.Redis, prefix: str) -> ProviderCalls:
    """The process's tallies for one Redis and key prefix (a worker has one)."""
    return ProviderCalls(client, prefix)


def calls_of(context: WorkerContext) -> ProviderCalls:
    return calls_for(context.redis, context.settings.broker_key_prefix)


@task_postrun.connect
def _flush_after_task(**_: Any) -> None:
    # A task's calls are on /metrics once it ends, not only after the next call a second later.
    for calls in list(_every):
        calls.flush()


class _Metered:
    def __init__(self, inner: Any, provider: str, calls: ProviderCalls) -> None:
        self.inner, self.provider, self.calls = inner, provider, calls

    def _timed(self, operation: str, call: Callable[[], T]) -> T:
        with self.calls.timed(self.provider, operation):
            return call()


class MeteredCalendar(_Metered):
    """A `CalendarProvider` whose every call is timed under its system's name."""

    inner: CalendarProvider

    @property
    def write_concurrency(self) -> int:
        return self.inner.write_concurrency

    @property
    def read_only(self) -> bool:
        return self.inner.read_only

    def list_changes(self, cursor: str | None) -> ChangePage:
        return self._timed("list_changes", lambda: self.inner.list_changes(cursor))

    def list_window(self, start: datetime, end: datetime) -> Sequence[RemoteEvent]:
        return self._timed("list_window", lambda: self.inner.list_window(start, end))

    def get(self, event_id: str) -> RemoteEvent:
        return self._timed("get", lambda: self.inner.get(event_id))

    def create(self, event: CanonicalEvent, idempotency_key: str, *, marker: str,
               tag: str | None = None) -> RemoteEvent:  # fmt: skip
        return self._timed("create", lambda: self.inner.create(
            event, idempotency_key, marker=marker, tag=tag))  # fmt: skip

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        return self._timed("update", lambda: self.inner.update(event_id, event, if_match))

    def delete(self, event_id: str, if_match: str | None) -> None:
        self._timed("delete", lambda: self.inner.delete(event_id, if_match))


class MeteredBatchCalendar(MeteredCalendar):
    """The same for a calendar that also takes writes in batches (`BatchWriter`)."""

    inner: Any  # a CalendarProvider that is a BatchWriter too

    @property
    def batch_size(self) -> int:
        size: int = self.inner.batch_size
        return size

    def write_many(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        return self._timed("write_batch", lambda: self.inner.write_many(writes))


def metered_calendar(inner: CalendarProvider, provider: str, calls: ProviderCalls
                     ) -> CalendarProvider:  # fmt: skip
    if isinstance(inner, BatchWriter):
        return MeteredBatchCalendar(inner, provider, calls)
    return MeteredCalendar(inner, provider, calls)


class MeteredAccount(_Metered):
    """A `CalendarAccount` whose calls, and its calendars' calls, are timed."""

    inner: CalendarAccount

    def list_calendars(self) -> list[CalendarInfo]:
        return self._timed("list_calendars", self.inner.list_calendars)

    def calendar(self, info: CalendarInfo, window: SyncWindow) -> CalendarProvider:
        return metered_calendar(self.inner.calendar(info, window), self.provider, self.calls)

    def create_calendar(self, name: str, key: str) -> CalendarInfo:
        return self._timed("create_calendar", lambda: self.inner.create_calendar(name, key))

    def open_channel(self, calendar_id: str, address: str) -> Channel:
        return self._timed("open_channel", lambda: self.inner.open_channel(calendar_id, address))

    def renew_channel(self, channel: Channel, calendar_id: str, address: str) -> Channel:
        return self._timed("renew_channel",
                           lambda: self.inner.renew_channel(channel, calendar_id, address))

    def stop_channel(self, channel: Channel) -> None:
        self._timed("stop_channel", lambda: self.inner.stop_channel(channel))

    def refresh_credentials(self) -> Credentials:
        return self._timed("refresh_credentials", self.inner.refresh_credentials)

    def close(self) -> None:
        self.inner.close()
