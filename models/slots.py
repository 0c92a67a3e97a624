"""When a connection's periodic work (reconciliation, polling) falls due next.

Slots are spread at random so that thousands of connections made or run together never fall
due together: the dispatcher's ticks stay even."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def first_due(now: datetime, interval: float, rng: random.Random | None = None) -> datetime:
    """A new connection's first slot, anywhere in one interval."""
    return now + timedelta(seconds=interval * (rng or random).random())


def next_due(now: datetime, interval: float, rng: random.Random | None = None) -> datetime:
    """The slot after a run: one interval on, with ±10 % jitter so slots never bunch up."""
    return now + timedelta(seconds=interval * (0.9 + 0.2 * (rng or random).random()))
