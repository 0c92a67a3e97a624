"""An injectable clock, so tests expire tokens and channels without sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time plus an offset that tests may move forward (or pin with `set`)."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._frozen: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def now_ms(self) -> int:
        return int(self.now().timestamp() * 1000)

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            step = timedelta(seconds=seconds)
            if self._frozen is not None:
                self._frozen += step
            else:
                self._offset += step
        return self.now()

    def set(self, moment: datetime) -> None:
        """Pin the clock at `moment` (timezone-aware); it stays there until advanced or released."""
        if moment.tzinfo is None:
            raise ValueError("the sandbox clock needs a timezone-aware datetime")
        with self._lock:
            self._frozen = moment.astimezone(UTC)

    def reset(self) -> None:
        """Back to plain wall-clock time."""
        with self._lock:
            self._offset = timedelta(0)
            self._frozen = None

    def release(self) -> None:
        """Let a pinned clock run again from where it was pinned."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - datetime.now(UTC)
                self._frozen = None
