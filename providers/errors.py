"""The errors every provider call can fail with, and what the providers share in reading them:
the `Retry-After` header, and a table from HTTP status to error."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum


class ProviderError(Exception):
    """Anything a provider call can fail with that calsync handles."""


class TransientError(ProviderError):
    """Try again later (network, 5xx); `retry_after` in seconds when the provider said."""

    def __init__(self, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """429, or Google's 403 rate-limit reasons."""


class PermanentReason(StrEnum):
    TOKEN_REVOKED = "TOKEN_REVOKED"  # invalid_grant: the user must reconnect
    FORBIDDEN = "FORBIDDEN"  # no write access (a read-only calendar), or no access at all
    CALENDAR_DELETED = "CALENDAR_DELETED"
    INVALID_EVENT = "INVALID_EVENT"  # the provider refuses this event's content


class PermanentError(ProviderError):
    """Retrying will not help; the connection (or the event) needs a person."""

    def __init__(self, reason: PermanentReason, message: str = "") -> None:
        super().__init__(message or reason.value)
        self.reason = reason


class PreconditionFailed(ProviderError):
    """412: the event changed since the version passed as If-Match."""


class NotFound(ProviderError):
    """404/410 on get or update. (On delete, a missing event counts as deleted.)"""


class AlreadyExists(ProviderError):
    """409 on create when the provider cannot hand back the existing event itself."""


class CursorExpired(ProviderError):
    """The change cursor (sync token, delta link, sync-collection token) is no longer valid."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    reference = now or datetime.now(moment.tzinfo)
    return max(0.0, (moment - reference).total_seconds())
