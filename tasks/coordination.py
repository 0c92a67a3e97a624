"""One writer per calendar, and coalescing of the notifications that arrive meanwhile.

Three Redis keys per calendar:
- `lock`   held by the running sync, with an owner token and a timeout (a crashed worker's lock
           expires);
- `dirty`  set by a sync that found the lock taken: the holder runs once more before letting go;
- `queued` set when a sync task is enqueued and cleared when one starts, so a burst of webhooks
           enqueues one task, not hundreds.
Acquire-or-mark-dirty and release-or-report-dirty are single Lua scripts, so no notification can
slip between the holder's last check and its release.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import redis

ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local dirty = redis.call('GET', KEYS[2])
redis.call('DEL', KEYS[2])
if dirty then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
redis.call('DEL', KEYS[1])
return 0
"""

ABANDON = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

EXTEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""


class LockLost(RuntimeError):
    """The lock expired and someone else may be writing: stop before the next write."""


class CalendarBusy(Exception):
    """A sync run holds the calendar's lock; try again in a moment."""


class CalendarGate:
    def __init__(self, client: redis.Redis, prefix: str = "", lock_seconds: int = 600) -> None:
        self.client = client
        self.prefix = f"{prefix}calsync:calendar:"
        self.lock_ms = lock_seconds * 1000
        self._acquire = client.register_script(ACQUIRE)
        self._release = client.register_script(RELEASE)
        self._extend = client.register_script(EXTEND)
        self._abandon = client.register_script(ABANDON)

    def _keys(self, calendar_id: str) -> tuple[str, str, str]:
        base = f"{self.prefix}{calendar_id}"
        return f"{base}:lock", f"{base}:dirty", f"{base}:queued"

    def mark_queued(self, calendar_id: str, seconds: int = 60) -> bool:
        """True if no sync task was waiting already (so the caller should enqueue one)."""
        return bool(self.client.set(self._keys(calendar_id)[2], "1", nx=True, ex=seconds))

    def mark_all_queued(self, calendar_ids: Sequence[str], seconds: int = 60) -> list[str]:
        """`mark_queued` for many calendars in one round trip: those that had none waiting."""
        pipe = self.client.pipeline(transaction=False)
        for calendar_id in calendar_ids:
            pipe.set(self._keys(calendar_id)[2], "1", nx=True, ex=seconds)
        return [c for c, marked in zip(calendar_ids, pipe.execute(), strict=True) if marked]

    def clear_queued(self, calendar_id: str) -> None:
        self.client.delete(self._keys(calendar_id)[2])

    def acquire(self, calendar_id: str) -> str | None:
        """The owner token, or None after marking the calendar dirty for the current holder."""
        token = secrets.token_hex(16)
        lock, dirty, _ = self._keys(calendar_id)
        won = self._acquire(keys=[lock, dirty], args=[token, self.lock_ms, self.lock_ms])
        return token if won == 1 else None

    def release(self, calendar_id: str, token: str) -> bool:
        """Release, unless changes arrived meanwhile: then keep the lock and return True, and the
        caller runs once more (exactly one follow-up however many notifications came)."""
        lock, dirty, _ = self._keys(calendar_id)
        result = self._release(keys=[lock, dirty], args=[token, self.lock_ms])
        if result == -1:
            raise LockLost(calendar_id)
        return bool(result == 1)

    def abandon(self, calendar_id: str, token: str) -> None:
        """Let go after a failure; a pending dirty mark stays for whoever runs next."""
        self._abandon(keys=[self._keys(calendar_id)[0]], args=[token])

    def extend(self, calendar_id: str, token: str) -> None:
        if not self._extend(keys=[self._keys(calendar_id)[0]], args=[token, self.lock_ms]):
            raise LockLost(calendar_id)

    def heartbeat(self, calendar_id: str, token: str) -> Callable[[], None]:
        """A call to make after each write: every third of the lock's time it extends the
        lock, and raises `LockLost` if it was lost, so the holder stops before writing more."""
        interval, last = self.lock_ms / 3000, [time.monotonic()]

        def beat() -> None:
            if time.monotonic() - last[0] >= interval:
                self.extend(calendar_id, token)
                last[0] = time.monotonic()

        return beat

    @contextmanager
    def held(self, calendar_id: str) -> Iterator[Callable[[], None]]:
        """The calendar's lock for work outside a sync run (removing copies), with its
        heartbeat; `CalendarBusy` while a run holds it. A dirty mark a notification left stays
        for the next run."""
        token = self.acquire(calendar_id)
        if token is None:
            raise CalendarBusy(calendar_id)
        try:
            yield self.heartbeat(calendar_id, token)
        finally:
            self.abandon(calendar_id, token)
