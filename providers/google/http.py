"""The Calendar API client as calsync runs it: google-api-python-client over httplib2, with
google-auth credentials that refresh themselves, a hook before every HTTP request, and every
failure translated into the provider errors of `providers.base`.

- `before_request` sits in the httplib2 object underneath google-auth's `AuthorizedHttp`, so it
  fires for API calls *and* for the token refreshes google-auth makes on its own.
- A refreshed access token is reported through `on_tokens`, so the caller can store it.
- google-api-python-client retries nothing (`execute(num_retries=0)`): backoff belongs to the
  pipeline. (google-auth still retries a token refresh that fails with a 5xx a few times.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import google.auth.exceptions
import google_auth_httplib2
import googleapiclient.errors
import httplib2
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from providers.base import BeforeRequest
from providers.errors import (
    AlreadyExists,
    CursorExpired,
    ErrorMaker,
    PermanentError,
    PermanentReason,
    ProviderError,
    RateLimited,
    TransientError,
    error_for_status,
    retry_after_seconds,
)
from providers.google.auth import GoogleTokens

TokensCallback = Callable[[GoogleTokens], None]
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
# The discovery document's `servicePath` and `batchPath`: the batch endpoint sits at the API's
# root, next to the service path the configured base URL ends with.
SERVICE_PATH = "calendar/v3/"
BATCH_PATH = "batch/calendar/v3"


class Missing(Enum):
    """What a 404 means for the request at hand."""

    EVENT = "event"  # the event: NotFound
    CALENDAR = "calendar"  # the calendar (or the whole resource): PermanentError


@dataclass(frozen=True)
class ApiCall:
    """A prepared request, what a 404 to it means, and the version it is conditional on."""

    request: Any
    missing: Missing = Missing.EVENT
    if_match: str | None = None


class HookedHttp(httplib2.Http):
    """httplib2 that calls `before_request` before each request it sends."""

    def __init__(self, before_request: BeforeRequest, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._before_request = before_request

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self._before_request()
        return super().request(*args, **kwargs)


class CalendarApi:
    """One account's authorised Calendar API service."""

    def __init__(
        self,
        tokens: GoogleTokens,
        *,
        client_id: str,
        client_secret: str,
        token_url: str,
        api_base_url: str,
        before_request: BeforeRequest | None = None,
        on_tokens: TokensCallback | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.tokens = tokens
        self._on_tokens = on_tokens or (lambda _tokens: None)
        self.credentials = Credentials(
            token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            token_uri=token_url,
            client_id=client_id,
            client_secret=client_secret,
            expiry=tokens.expiry.astimezone(UTC).replace(tzinfo=None),  # google-auth: naive UTC
        )
        raw = HookedHttp(before_request or (lambda: None), timeout_seconds)
        self._token_request = google_auth_httplib2.Request(raw)
        self._http = google_auth_httplib2.AuthorizedHttp(self.credentials, http=raw)
        base = api_base_url if api_base_url.endswith("/") else api_base_url + "/"
        self.batch_uri = base.removesuffix(SERVICE_PATH) + BATCH_PATH
        self.service: Any = build(
            "calendar",
            "v3",
            http=self._http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": base},
        )

    def execute(
        self,
        request: Any,
        *,
        missing: Missing = Missing.EVENT,
        if_match: str | None = None,
    ) -> Any:
        """Send one prepared request; returns its decoded body ("" for an empty one)."""
        _condition(request, if_match)
        with self._translated(missing):
            answer = request.execute(num_retries=0)
        return answer

    def execute_batch(self, calls: Sequence[ApiCall]) -> list[Any]:
        """Send the calls in one batch request: per call, its decoded body or its error (a
        `ProviderError`, returned). An error of the whole request is raised. The batch is one
        HTTP request, so one `before_request`, though Google counts each call against quota."""
        if not calls:
            return []
        answers: dict[str, Any] = {}

        def keep(request_id: str, answer: Any, error: HttpError | None) -> None:
            missing = calls[int(request_id)].missing
            answers[request_id] = answer if error is None else api_error(error, missing)

        # Not `service.new_batch_http_request()`: it posts to Google's root, whatever the base.
        batch = BatchHttpRequest(callback=keep, batch_uri=self.batch_uri)
        for index, call in enumerate(calls):
            _condition(call.request, call.if_match)
            # No Authorization of its own: the batch's applies, also once refreshed after a 401.
            call.request.http = None
            batch.add(call.request, request_id=str(index))
        with self._translated(Missing.EVENT):
            self._refresh_if_expired()
            batch.execute(http=self._http)
        return [answers[str(index)] for index in range(len(calls))]

    def _refresh_if_expired(self) -> None:
        """Refresh an expired access token through `before_request`: left to the library, a
        batch refreshes it over a connection of its own."""
        if not self.credentials.valid:
            self.credentials.refresh(self._token_request)

    @contextmanager
    def _translated(self, missing: Missing) -> Iterator[None]:
        """Whatever sending a request raised, as a provider error."""
        try:
            yield
        except HttpError as error:
            raise api_error(error, missing) from None
        except google.auth.exceptions.RefreshError as error:
            raise refresh_error(error) from None
        except google.auth.exceptions.TransportError as error:
            raise TransientError(f"token endpoint unreachable: {type(error).__name__}") from None
        except (httplib2.HttpLib2Error, OSError) as error:
            raise TransientError(f"network: {type(error).__name__}") from None
        except (googleapiclient.errors.Error, ValueError) as error:
            # An answer the library could not read (not JSON, say): a broken proxy or a blip.
            raise TransientError(f"unreadable answer: {type(error).__name__}") from None
        finally:
            self._report_refresh()

    def _report_refresh(self) -> None:
        """Tell the caller when google-auth refreshed the access token by itself."""
        creds = self.credentials
        if not creds.token or creds.token == self.tokens.access_token:
            return
        expiry = creds.expiry.replace(tzinfo=UTC) if creds.expiry else self.tokens.expiry
        granted = tuple(creds.granted_scopes or ()) or self.tokens.scopes
        self.tokens = GoogleTokens(
            access_token=creds.token,
            refresh_token=creds.refresh_token or self.tokens.refresh_token,
            expiry=expiry,
            scopes=granted,
            email=self.tokens.email,
        )
        self._on_tokens(self.tokens)


# Google answers 409 for an id already taken: a create made before.
LADDER: dict[int, ErrorMaker] = {409: lambda message, _: AlreadyExists(message)}


def api_error(error: HttpError, missing: Missing = Missing.EVENT) -> ProviderError:
    """An API error answer as a provider error."""
    status = error.status_code or 0
    reason = error_reason(error)
    retry_after = retry_after_seconds(_header(error, "retry-after"))
    what = f"Google answered {status} ({reason or 'no reason'})"
    if status == 403 and reason in RATE_LIMIT_REASONS:
        return RateLimited(f"Google rate limit ({reason})", retry_after)
    if status == 410 and reason == "fullSyncRequired":
        return CursorExpired("sync token expired")
    if status in (404, 410) and missing is Missing.CALENDAR:
        return PermanentError(PermanentReason.CALENDAR_DELETED, "the calendar is gone")
    return error_for_status(status or None, what, retry_after, LADDER)


def error_reason(error: HttpError) -> str:
    """The first `errors[].reason` of Google's error body ("" when there is none)."""
    details = error.error_details
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("reason") or "")
    try:
        body = json.loads(error.content)
        return str(body["error"]["errors"][0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def refresh_error(error: google.auth.exceptions.RefreshError) -> ProviderError:
    """google-auth could not refresh the access token."""
    data = error.args[1] if len(error.args) > 1 else None
    code = data.get("error") if isinstance(data, dict) else None
    if code == "invalid_grant":
        return PermanentError(PermanentReason.TOKEN_REVOKED, "Google refused the refresh token")
    if error.retryable or code in ("temporarily_unavailable", "internal_failure"):
        return TransientError("token refresh failed for now")
    return PermanentError(PermanentReason.FORBIDDEN, f"token refresh refused ({code})")


def _condition(request: Any, if_match: str | None) -> None:
    if if_match is not None:
        request.headers["If-Match"] = if_match  # the library has no argument for it


def ms_to_datetime(value: Any) -> datetime | None:
    """A channel `expiration` (Unix milliseconds, as string or number)."""
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _header(error: HttpError, name: str) -> str | None:
    value = error.resp.get(name) if error.resp is not None else None
    return None if value is None else str(value)
