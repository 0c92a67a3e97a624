"""Injected trouble for the API routes: server errors, slowness, 429s, and a request quota.

Admin routes (`/_sandbox/...`) are never affected, so a test can always clear what it set.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.wix.errors import WixError

ADMIN_PREFIX = "/_sandbox"


@dataclass
class FaultRule:
    kind: str  # "error" | "delay" | "throttle"
    remaining: int | None  # requests still affected; None: until cleared
    status: int = 503
    delay_ms: int = 0
    retry_after: int = 1
    path_prefix: str = "/"
    method: str | None = None

    def applies(self, method: str, path: str) -> bool:
        return (
            self.remaining != 0
            and path.startswith(self.path_prefix)
            and (self.method is None or self.method.upper() == method)
        )


@dataclass
class Verdict:
    delay_s: float = 0.0
    error: WixError | None = None


class FaultPlan:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._monotonic = monotonic
        self._quota: tuple[int, float] | None = None
        self._window: tuple[float, int] = (0.0, 0)  # window start, requests counted

    def fail(
        self,
        status: int = 503,
        times: int | None = 1,
        path_prefix: str = "/",
        method: str | None = None,
    ) -> FaultRule:
        """Answer the next `times` matching requests with `status` (None: until cleared)."""
        return self._add(
            FaultRule("error", times, status=status, path_prefix=path_prefix, method=method)
        )

    def slow(
        self, ms: int, times: int | None = None, path_prefix: str = "/", method: str | None = None
    ) -> FaultRule:
        """Delay matching requests by `ms` milliseconds before handling them."""
        return self._add(
            FaultRule("delay", times, delay_ms=ms, path_prefix=path_prefix, method=method)
        )

    def throttle(
        self,
        times: int | None = 1,
        retry_after: int = 1,
        path_prefix: str = "/",
        method: str | None = None,
    ) -> FaultRule:
        """Answer the next `times` matching requests with 429 and `Retry-After: retry_after`."""
        return self._add(
            FaultRule(
                "throttle",
                times,
                status=429,
                retry_after=retry_after,
                path_prefix=path_prefix,
                method=method,
            )
        )

    def rate_limit(self, requests: int, per_seconds: float) -> None:
        """Allow `requests` API calls per fixed window of `per_seconds`; 429 beyond that."""
        with self._lock:
            self._quota = (requests, per_seconds)
            self._window = (self._monotonic(), 0)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._quota = None

    def judge(self, method: str, path: str) -> Verdict:
        """What to do to this request; consumes one use of each rule that applies."""
        verdict = Verdict()
        if path.startswith(ADMIN_PREFIX):
            return verdict
        with self._lock:
            for rule in self._rules:
                if not rule.applies(method, path):
                    continue
                if rule.kind == "delay":
                    verdict.delay_s += rule.delay_ms / 1000
                elif verdict.error is None:
                    verdict.error = _rule_error(rule)
                else:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
            self._rules = [rule for rule in self._rules if rule.remaining != 0]
            if verdict.error is None:
                verdict.error = self._over_quota()
        return verdict

    def _add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def _over_quota(self) -> WixError | None:
        if self._quota is None:
            return None
        limit, period = self._quota
        started, count = self._window
        now = self._monotonic()
        if now - started >= period:
            started, count = now, 0
        self._window = (started, count + 1)
        if count < limit:
            return None
        return _throttled(math.ceil(started + period - now))


def _rule_error(rule: FaultRule) -> WixError:
    if rule.kind == "throttle":
        return _throttled(rule.retry_after)
    return WixError(rule.status, "SANDBOX_INJECTED_FAILURE", "injected failure")


def _throttled(retry_after: int) -> WixError:
    return WixError(
        429,
        "TOO_MANY_REQUESTS",
        "rate limit exceeded",
        headers={"Retry-After": str(max(1, retry_after))},
    )


class FaultMiddleware:
    """ASGI middleware applying a `FaultPlan` before the request reaches its route."""

    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        verdict = self.plan.judge(scope["method"], scope["path"])
        if verdict.delay_s:
            await asyncio.sleep(verdict.delay_s)
        if verdict.error is None:
            await self.app(scope, receive, send)
            return
        await _send_error(send, verdict.error)


async def _send_error(send: Send, error: WixError) -> None:
    body = json.dumps(error.body()).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
