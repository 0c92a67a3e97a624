"""The local store's HTTP answers as provider errors."""

from __future__ import annotations

import httpx

from providers.errors import (
    CursorExpired,
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    ProviderError,
    RateLimited,
    TransientError,
    retry_after_seconds,
)


def error_for(response: httpx.Response) -> ProviderError:
    status = response.status_code
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if status == 429:
        return RateLimited("rate limited", retry_after)
    if status >= 500:
        return TransientError(f"store answered {status}", retry_after)
    if status == 412:
        return PreconditionFailed(response.text)
    if status == 410:
        return CursorExpired(response.text)
    if status == 404:
        return NotFound(response.text)
    if status == 401:
        return PermanentError(PermanentReason.TOKEN_REVOKED, response.text)
    if status == 403:
        return PermanentError(PermanentReason.FORBIDDEN, response.text)
    return PermanentError(PermanentReason.INVALID_EVENT, f"{status}: {response.text}")
