"""The account's token bucket, timed by Redis: a burst, then the rate; never faster, however
busy the machine (the checks bound from below what a slow machine can only lengthen)."""

from __future__ import annotations

import time
import uuid

import redis

from tasks.throttle import AccountThrottle, Quota


def redis_seconds(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return float(seconds) + micros / 1e6


def test_bucket_grants_the_burst_then_paces_to_the_rate(redis_server: str) -> None:
    throttle = AccountThrottle(redis.Redis.from_url(f"{redis_server}/0"), prefix=uuid.uuid4().hex)
    quota = Quota(rate=2.0, burst=5)  # slow enough that six takes always outrun it
    waits = [throttle.take("google:alice", quota) for _ in range(6)]
    assert waits[:5] == [0.0] * 5
    assert 0 < waits[5] <= 1 / 2
    assert throttle.take("google:bob", quota) == 0.0  # accounts are independent
    time.sleep(waits[5] + 0.01)
    assert throttle.take("google:alice", quota) == 0.0


def test_sustained_rate_never_exceeds_the_quota(redis_server: str) -> None:
    client = redis.Redis.from_url(f"{redis_server}/0")
    throttle = AccountThrottle(client, prefix=uuid.uuid4().hex)
    quota = Quota(rate=50.0, burst=1)
    granted, started = 0, redis_seconds(client)
    while granted < 26:
        wait = throttle.take("acct", quota)
        if wait == 0:
            granted += 1
        else:
            time.sleep(wait)
    # The burst of 1, then 25 more at 50/s: at least half a second of the bucket's own clock.
    assert redis_seconds(client) - started >= 25 / 50 - 0.005
