"""The local store's HTTP answers as provider errors."""

from __future__ import annotations

import httpx

from providers.errors import (
    CursorExpired,
    ErrorMaker,
    ProviderError,
    error_for_status,
    retry_after_seconds,
)

# The store answers 410 for a cursor it forgot.
LADDER: dict[int, ErrorMaker] = {410: lambda message, _: CursorExpired(message)}


def error_for(response: httpx.Response) -> ProviderError:
    status = response.status_code
    message = f"store answered {status}" if status >= 500 else response.text
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    return error_for_status(status, message, retry_after, LADDER)
