"""Injected failures: throttling (429 + Retry-After), 5xx answers, dropped notifications, and an
optional per app+mailbox request budget like Outlook's."""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from .errors import GraphError

_SERVER_ERRORS = {
    500: ("generalException", "An internal server error occurred."),
    502: ("BadGateway", "The gateway received an invalid response."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The gateway timed out."),
}


@dataclass
class _Rule:
    status: int
    remaining: int | None  # None: no count limit (then `share` decides)
    share: float
    retry_after: str | None
    path_prefix: str
    methods: frozenset[str] | None

    def applies(self, method: str, path: str) -> bool:
        if not path.startswith(self.path_prefix):
            return False
        return self.methods is None or method.upper() in self.methods


@dataclass
class _RateLimit:
    max_requests: int
    per_seconds: float
    seen: dict[str, deque[datetime]] = field(default_factory=dict)


class Faults:
    """Thread-safe fault switchboard consulted by every Graph API request and every delivery."""

    def __init__(self, now: Callable[[], datetime], seed: int = 7) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._rules: list[_Rule] = []
        self._rate: _RateLimit | None = None
        self._drop_remaining: int | None = 0
        self._drop_share = 0.0
        self._corrupt_remaining = 0
        self._lose: list[_Rule] = []
        self.injected: dict[int, int] = {}  # status -> how many answers were injected
        self.dropped_notifications = 0

    def throttle(
        self,
        count: int | None = 1,
        *,
        share: float = 1.0,
        retry_after: float | str = 1,
        path_prefix: str = "/v1.0/",
        methods: list[str] | None = None,
    ) -> None:
        """The next `count` matching requests (or, with count=None, a `share` of them until
        `clear()`) answer 429 TooManyRequests with `Retry-After`."""
        self._add(429, count, share, str(retry_after), path_prefix, methods)

    def fail(
        self,
        count: int | None = 1,
        *,
        status: int = 503,
        share: float = 1.0,
        retry_after: float | str | None = None,
        path_prefix: str = "/v1.0/",
        methods: list[str] | None = None,
    ) -> None:
        """Like `throttle`, answering a 5xx (500, 502, 503 or 504) Graph error instead."""
        if status not in _SERVER_ERRORS:
            raise ValueError(f"unsupported server error status {status}")
        after = None if retry_after is None else str(retry_after)
        self._add(status, count, share, after, path_prefix, methods)

    def lose_answers(
        self, count: int = 1, *, path_prefix: str = "/v1.0/", methods: list[str] | None = None
    ) -> None:
        """The next `count` matching requests are carried out, but their answer is replaced by
        a 504 GatewayTimeout: the client cannot tell the write happened (what `transactionId`
        is for)."""
        allowed = frozenset(m.upper() for m in methods) if methods else None
        with self._lock:
            self._lose.append(_Rule(504, count, 1.0, None, path_prefix, allowed))

    def should_lose_answer(self, method: str, path: str) -> bool:
        with self._lock:
            for rule in self._lose:
                if rule.applies(method, path) and self._fires(rule):
                    self.injected[504] = self.injected.get(504, 0) + 1
                    return True
        return False

    def lost_answer(self) -> GraphError:
        code, message = _SERVER_ERRORS[504]
        return GraphError(504, code, message)

    def limit_rate(self, max_requests: int, per_seconds: float) -> None:
        """At most `max_requests` per app+mailbox in a sliding window (Outlook: 10,000 / 600 s)."""
        with self._lock:
            self._rate = _RateLimit(max_requests, per_seconds)

    def drop_notifications(self, count: int | None = 1, *, share: float = 1.0) -> None:
        """Lose the next `count` change/lifecycle deliveries (or a share of them, count=None)."""
        with self._lock:
            self._drop_remaining, self._drop_share = count, share

    def corrupt_client_state(self, count: int = 1) -> None:
        """The next `count` change notifications carry a wrong clientState (a forged sender)."""
        with self._lock:
            self._corrupt_remaining = count

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._lose.clear()
            self._rate = None
            self._drop_remaining, self._drop_share = 0, 0.0
            self._corrupt_remaining = 0

    def _add(
        self,
        status: int,
        count: int | None,
        share: float,
        retry_after: str | None,
        path_prefix: str,
        methods: list[str] | None,
    ) -> None:
        allowed = frozenset(m.upper() for m in methods) if methods else None
        with self._lock:
            self._rules.append(_Rule(status, count, share, retry_after, path_prefix, allowed))

    def check(self, method: str, path: str, budget_key: str | None) -> GraphError | None:
        """The error to answer instead of serving this request, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.applies(method, path) and self._fires(rule):
                    return self._error(rule.status, rule.retry_after)
            if self._rate is not None and budget_key is not None:
                return self._over_budget(self._rate, budget_key)
        return None

    def _fires(self, rule: _Rule) -> bool:
        if rule.remaining is not None and rule.remaining <= 0:
            return False
        if rule.share < 1.0 and self._random.random() >= rule.share:
            return False
        if rule.remaining is not None:
            rule.remaining -= 1
        return True

    def _over_budget(self, rate: _RateLimit, key: str) -> GraphError | None:
        now = self._now()
        window = rate.seen.setdefault(key, deque())
        while window and (now - window[0]).total_seconds() >= rate.per_seconds:
            window.popleft()
        if len(window) < rate.max_requests:
            window.append(now)
            return None
        wait = rate.per_seconds - (now - window[0]).total_seconds()
        return self._error(429, str(max(1, math.ceil(wait))))

    def _error(self, status: int, retry_after: str | None) -> GraphError:
        self.injected[status] = self.injected.get(status, 0) + 1
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        if status == 429:
            return GraphError(
                429,
                "TooManyRequests",
                "Please retry again later.",
                inner_code="429",
                headers=headers,
            )
        code, message = _SERVER_ERRORS[status]
        return GraphError(status, code, message, headers=headers)

    def should_corrupt_client_state(self) -> bool:
        with self._lock:
            if self._corrupt_remaining <= 0:
                return False
            self._corrupt_remaining -= 1
            return True

    def should_drop_notification(self) -> bool:
        with self._lock:
            if self._drop_remaining is not None and self._drop_remaining <= 0:
                return False
            if self._drop_share < 1.0 and self._random.random() >= self._drop_share:
                return False
            if self._drop_remaining is not None:
                self._drop_remaining -= 1
            self.dropped_notifications += 1
            return True
