from __future__ import annotations

import random

import pytest

from tasks.backoff import retry_delay


@pytest.mark.parametrize("attempt", range(12))
def test_delays_grow_exponentially_within_the_cap(attempt: int) -> None:
    rng = random.Random(attempt)
    delays = [retry_delay(attempt, None, cap=600, rng=rng.random) for _ in range(200)]
    assert all(0 <= d <= min(600, 2**attempt) for d in delays)
    assert max(delays) > min(600, 2**attempt) * 0.8  # full jitter reaches near the ceiling


def test_retry_after_is_a_floor() -> None:
    assert retry_delay(0, 7.5, cap=600, rng=lambda: 0.0) == 7.5
    assert retry_delay(10, 7.5, cap=600, rng=lambda: 1.0) == 600
    # A provider asking for longer than the cap is still obeyed.
    assert retry_delay(0, 900, cap=600, rng=lambda: 0.5) == 900
