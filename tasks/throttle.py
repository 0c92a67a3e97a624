"""A token bucket per provider account in Redis, so every worker together stays under a quota.

Time comes from Redis (`TIME`), not from the workers' clocks, which may disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or t
tokens = math.min(burst, tokens + (t - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(t))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""


@dataclass(frozen=True)
class Quota:
    """`rate` requests per second on average, `burst` at once."""

    rate: float
    burst: int


class AccountThrottle:
    def __init__(self, client: redis.Redis, prefix: str = "") -> None:
        self.prefix = f"{prefix}calsync:bucket:"
        self._take = client.register_script(TAKE)

    def take(self, account: str, quota: Quota) -> float:
        """Take one token; returns 0 when granted, else the seconds until one is available."""
        wait = float(self._take(keys=[f"{self.prefix}{account}"], args=[quota.rate, quota.burst]))
        return wait
