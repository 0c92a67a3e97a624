"""When to try again after a transient provider error.

Exponential backoff with full jitter spreads retries of many calendars apart; a provider's
`Retry-After` is a floor, never shortened by the jitter. Delays stay under a cap that is itself
below the broker's visibility timeout (a longer countdown would be redelivered and run twice).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from providers.errors import TransientError


def retry_delay(
    attempt: int,
    retry_after: float | None,
    cap: float,
    base: float = 1.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `attempt` (0 for the first retry)."""
    ceiling = min(cap, base * 2.0 ** min(attempt, 32))
    delay = rng() * ceiling
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, cap) if retry_after is None or retry_after <= cap else retry_after


def retry_after_error(attempt: int, error: Exception, cap: float) -> float:
    """The delay after `error`: soon while a sync run holds the calendar's lock (runs are
    short), backing off if it stays held; a provider's `Retry-After` as the floor."""
    retry_after = error.retry_after if isinstance(error, TransientError) else None
    return retry_delay(attempt, retry_after, cap=cap)
