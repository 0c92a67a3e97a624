"""Per-tenant rate limits on the API: a token bucket per tenant in Redis, shared by every API
process.

A tenant may send `api_rate_limit_per_second` requests a second on average and
`api_rate_limit_burst` at once. The bucket is taken once the API key names an active tenant
(`api.auth`), so a request without a good key spends nobody's tokens, and only the routes that
take a key are limited (the External Calendars API and the v1 sync-request API; not webhooks,
health, metrics or the status page). Over the limit: 429 with `Retry-After`; every limited answer
carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`. If Redis cannot be
reached the request goes through unlimited, and a warning is logged at most once a minute.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError
from api.handover import redis_client
from config import Settings

log = logging.getLogger(__name__)
WARN_EVERY = 60.0  # seconds between two warnings that Redis is unreachable
RECHECK_AFTER = 5.0  # seconds requests pass unlimited before Redis is asked again
STATE_KEY = "rate_limit"  # where a granted request keeps its verdict, in the ASGI scope's state

# One round trip, atomic: refill by the time passed, take a token if there is one. The time is
# the caller's when it passes one (a test's clock), else Redis's own, which every API process
# shares (their clocks may disagree).
SPEND = """
local per_second, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
end
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local left = tonumber(bucket[1]) or capacity
local since = math.max(0, now - (tonumber(bucket[2]) or now))
left = math.min(capacity, left + since * per_second)
local granted = 0
if left >= 1 then
  left, granted = left - 1, 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(left), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / per_second) + 60)
return {granted, tostring(left)}
"""


@dataclass(frozen=True)
class Verdict:
    """One request's answer from the bucket, in whole numbers as the headers give them."""

    granted: bool
    limit: int  # the burst: requests at once from a full bucket
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until the next token (0 when granted)

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


class TenantBuckets:
    """The tenants' buckets in Redis. `clock` (seconds) replaces Redis's time when given."""

    def __init__(self, client: redis.Redis, prefix: str, per_second: float, burst: int,
                 clock: Callable[[], float] | None = None) -> None:  # fmt: skip
        self.prefix = f"{prefix}calsync:api-bucket:"
        self.per_second, self.burst, self.clock = per_second, burst, clock
        self._spend = client.register_script(SPEND)
        self._warned_at: float | None = None
        self._warning = threading.Lock()
        self.down_until = 0.0  # monotonic: Redis was unreachable, ask it again after this

    def take(self, tenant_id: str) -> Verdict:
        now = [] if self.clock is None else [repr(self.clock())]
        granted, raw = self._spend(keys=[self.prefix + tenant_id],
                                   args=[self.per_second, self.burst, *now])  # fmt: skip
        left = float(raw)
        wait = 0 if granted else max(1, math.ceil((1 - left) / self.per_second))
        return Verdict(bool(granted), self.burst, math.floor(left),
                       math.ceil((self.burst - left) / self.per_second), wait)  # fmt: skip

    def unreachable(self, error: redis.RedisError) -> None:
        """Let requests pass unlimited for `RECHECK_AFTER` seconds, without each paying for
        the client's retries, and say so once per `WARN_EVERY`."""
        with self._warning:
            now = time.monotonic()
            self.down_until = now + RECHECK_AFTER
            if self._warned_at is not None and now - self._warned_at < WARN_EVERY:
                return
            self._warned_at = now
        log.warning("API rate limits not applied, Redis is unreachable: %s", type(error).__name__)


def buckets(state: Any) -> TenantBuckets:
    """The app's buckets, on the Redis client the app already has (`api.handover`)."""
    if getattr(state, "tenant_buckets", None) is None:
        settings: Settings = state.settings
        state.tenant_buckets = TenantBuckets(
            redis_client(state), settings.broker_key_prefix,
            settings.api_rate_limit_per_second, settings.api_rate_limit_burst,
        )  # fmt: skip
    found: TenantBuckets = state.tenant_buckets
    return found


def admit(request: Request, tenant_id: str) -> None:
    """Take the tenant's token for this request, or refuse it with 429."""
    if request.app.state.settings.api_rate_limit_per_second <= 0:
        return
    bucket = buckets(request.app.state)
    if time.monotonic() < bucket.down_until:
        return
    try:
        verdict = bucket.take(tenant_id)
    except redis.RedisError as error:  # fail open: the limit protects, it must not stop the API
        bucket.unreachable(error)
        return
    if not verdict.granted:
        raise too_many(verdict, bucket.per_second)
    request.state.rate_limit = verdict


def too_many(verdict: Verdict, per_second: float) -> ApiError:
    message = (f"the tenant's rate limit ({per_second:g}/s, bursts of {verdict.limit}) is "
               f"exceeded; retry in {verdict.retry_after} s")  # fmt: skip
    headers = {**verdict.headers(), "Retry-After": str(verdict.retry_after)}
    return ApiError(429, message, code="RESOURCE_EXHAUSTED", headers=headers)


class RateLimitHeaders:
    """Adds the RateLimit headers to the answer of a request the bucket granted, whatever the
    route answers (a model, a Response of its own, or an error). Plain ASGI."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def sending(message: Message) -> None:
            verdict = state.get(STATE_KEY)
            if message["type"] == "http.response.start" and isinstance(verdict, Verdict):
                extra = [(k.lower().encode(), v.encode()) for k, v in verdict.headers().items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, sending)


def header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer", "minimum": 0}}


HEADERS = {
    "RateLimit-Limit": header("Requests the tenant may send at once (the bucket's size)"),
    "RateLimit-Remaining": header("Requests left in the bucket now"),
    "RateLimit-Reset": header("Seconds until the bucket is full again"),
}
TOO_MANY = {
    "description": "The tenant's rate limit is exceeded; retry after `Retry-After` seconds",
    "headers": {"Retry-After": header("Seconds until a request can be granted"), **HEADERS},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation that takes the API key is limited: it may answer 429, and its successful
    answers carry the RateLimit headers."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict) or not operation.get("security"):
                continue
            answers = operation.setdefault("responses", {})
            answers["429"] = TOO_MANY
            for status, answer in answers.items():
                if status.startswith("2"):
                    answer.setdefault("headers", {}).update(HEADERS)
    return schema
