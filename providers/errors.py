"""The errors every provider call can fail with, and what the providers share in reading them:
the `Retry-After` header, and a table from HTTP status to error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


# What an HTTP status means, as a table each system adjusts with its own entries (`overrides`);
# what a system reads from its error bodies (a Google reason, a Graph or Wix code) it decides
# before consulting the table.
ErrorMaker = Callable[[str, float | None], ProviderError]
STATUS_ERRORS: Mapping[int, ErrorMaker] = {
    401: lambda message, _: PermanentError(PermanentReason.TOKEN_REVOKED, message),
    403: lambda message, _: PermanentError(PermanentReason.FORBIDDEN, message),
    404: lambda message, _: NotFound(message),
    410: lambda message, _: NotFound(message),
    412: lambda message, _: PreconditionFailed(message),
    429: lambda message, retry_after: RateLimited(message, retry_after),
}


def error_for_status(
    status: int | None, message: str, retry_after: float | None = None,
    overrides: Mapping[int, ErrorMaker] | None = None,
) -> ProviderError:  # fmt: skip
    """The system's entry for `status`, else the common one; a status neither names is
    transient for 5xx, 408 and no answer at all, and otherwise a refusal of the event."""
    make = (overrides or {}).get(status or 0) or STATUS_ERRORS.get(status or 0)
    if make is not None:
        return make(message, retry_after)
    if status is None or status >= 500 or status == 408:
        return TransientError(message, retry_after)
    return PermanentError(PermanentReason.INVALID_EVENT, message)
