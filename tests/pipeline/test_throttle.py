from __future__ import annotations

import time
import uuid

import redis

from tasks.throttle import AccountThrottle, Quota


def test_bucket_grants_the_burst_then_paces_to_the_rate(redis_server: str) -> None:
    throttle = AccountThrottle(redis.Redis.from_url(f"{redis_server}/0"), prefix=uuid.uuid4().hex)
    quota = Quota(rate=20.0, burst=5)
    waits = [throttle.take("google:alice", quota) for _ in range(6)]
    assert waits[:5] == [0.0] * 5
    assert 0 < waits[5] <= 1 / 20 + 0.01
    assert throttle.take("google:bob", quota) == 0.0  # accounts are independent
    time.sleep(waits[5] + 0.01)
    assert throttle.take("google:alice", quota) == 0.0


def test_sustained_rate_never_exceeds_the_quota(redis_server: str) -> None:
    throttle = AccountThrottle(redis.Redis.from_url(f"{redis_server}/0"), prefix=uuid.uuid4().hex)
    quota = Quota(rate=50.0, burst=1)
    granted = 0
    started = time.monotonic()
    while time.monotonic() - started < 0.5:
        wait = throttle.take("acct", quota)
        if wait == 0:
            granted += 1
        else:
            time.sleep(wait)
    # 0.5 s at 50/s plus the burst of 1, with a little slack for timing.
    assert 20 <= granted <= 27
