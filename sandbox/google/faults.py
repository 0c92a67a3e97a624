"""Faults tests can inject: rate limits (403/429), server errors (5xx), a sliding-window quota,
dropped push notifications and sync tokens that expire on their next use."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from .errors import ApiError, backend_error, rate_limited

Target = Literal["api", "token"]
RATE_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")


@dataclass(frozen=True)
class InjectedFault:
    status: int
    reason: str
    retry_after: float | None = None

    def api_error(self) -> ApiError:
        if self.status in (403, 429):
            return rate_limited(self.status, self.reason, self.retry_after)
        return backend_error(self.status, self.reason)

    def oauth_body(self) -> dict[str, str]:
        # google-auth retries token requests whose error is one of these.
        error = "temporarily_unavailable" if self.status in (429, 503) else "internal_failure"
        return {"error": error, "error_description": self.reason}


@dataclass
class _Planned:
    fault: InjectedFault
    remaining: int
    target: Target
    match: str | None  # substring of "METHOD /path"; None matches every request


@dataclass
class _Quota:
    limit: int
    window: timedelta
    fault: InjectedFault
    hits: dict[str, deque[datetime]] = field(default_factory=dict)


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: list[_Planned] = []
        self._quota: _Quota | None = None
        self._drops = 0
        self._sync_expiries = 0

    # -- what tests call ---------------------------------------------------------------------

    def rate_limit(
        self,
        count: int = 1,
        *,
        status: int = 403,
        reason: str = "rateLimitExceeded",
        retry_after: float | None = None,
        match: str | None = None,
        target: Target = "api",
    ) -> None:
        """The next `count` matching requests answer 403 (either reason) or 429."""
        if status not in (403, 429) or reason not in RATE_REASONS:
            raise ValueError(
                "rate limits are 403 or 429 with rateLimitExceeded/userRateLimitExceeded"
            )
        if status == 429:
            reason = "rateLimitExceeded"
        self._plan(InjectedFault(status, reason, retry_after), count, target, match)

    def fail(
        self,
        count: int = 1,
        *,
        status: int = 500,
        reason: str = "backendError",
        match: str | None = None,
        target: Target = "api",
    ) -> None:
        """The next `count` matching requests answer a 5xx."""
        if not 500 <= status <= 599:
            raise ValueError("fail() injects 5xx statuses")
        self._plan(InjectedFault(status, reason), count, target, match)

    def set_quota(
        self,
        limit: int,
        window_seconds: float = 60.0,
        *,
        status: int = 403,
        reason: str = "userRateLimitExceeded",
    ) -> None:
        """Allow each user `limit` API requests per sliding window; the rest are rate-limited."""
        fault = InjectedFault(status, "rateLimitExceeded" if status == 429 else reason)
        with self._lock:
            self._quota = _Quota(limit, timedelta(seconds=window_seconds), fault)

    def drop_notifications(self, count: int = 1) -> None:
        """The next `count` push messages are not sent (their message numbers are still used)."""
        with self._lock:
            self._drops += count

    def expire_next_sync_token(self, count: int = 1) -> None:
        """The next `count` requests that carry a syncToken answer 410 fullSyncRequired."""
        with self._lock:
            self._sync_expiries += count

    def clear(self) -> None:
        with self._lock:
            self._planned.clear()
            self._quota = None
            self._drops = self._sync_expiries = 0

    def pending(self) -> dict[str, Any]:
        with self._lock:
            return {
                "planned": [
                    {
                        "status": p.fault.status,
                        "reason": p.fault.reason,
                        "remaining": p.remaining,
                        "target": p.target,
                        "match": p.match,
                    }
                    for p in self._planned
                ],
                "quota": None if self._quota is None else self._quota.limit,
                "dropNotifications": self._drops,
                "expireSyncTokens": self._sync_expiries,
            }

    # -- what the sandbox consults -----------------------------------------------------------

    def request_fault(
        self, target: Target, method: str, path: str, user: str, now: datetime, metered: bool = True
    ) -> InjectedFault | None:
        """A planned fault matching the request, else the quota's refusal if it is `metered`."""
        request = f"{method.upper()} {path}"
        with self._lock:
            for planned in self._planned:
                if planned.target == target and (planned.match or "") in request:
                    planned.remaining -= 1
                    if planned.remaining <= 0:
                        self._planned.remove(planned)
                    return planned.fault
            if target == "api" and metered and self._quota is not None:
                return _over_quota(self._quota, user, now)
        return None

    def take_drop(self) -> bool:
        return self._take("_drops")

    def take_sync_expiry(self) -> bool:
        return self._take("_sync_expiries")

    def _take(self, counter: str) -> bool:
        with self._lock:
            left = getattr(self, counter)
            if left <= 0:
                return False
            setattr(self, counter, left - 1)
            return True

    def _plan(self, fault: InjectedFault, count: int, target: Target, match: str | None) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._planned.append(_Planned(fault, count, target, match))


def _over_quota(quota: _Quota, user: str, now: datetime) -> InjectedFault | None:
    hits = quota.hits.setdefault(user, deque())
    while hits and now - hits[0] >= quota.window:
        hits.popleft()
    if len(hits) >= quota.limit:
        return quota.fault
    hits.append(now)
    return None
