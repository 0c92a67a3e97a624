"""Talking to Wix for one app instance: the app token, the HTTP call, Wix errors as ours.

Wix app tokens come from client credentials (`POST /oauth2/token` with the app id, its secret and
the tenant's `instance_id`); they live 4 hours and there is no refresh token, so
a new one is minted shortly before the cached one runs out, or when Wix answers 401
`TOKEN_EXPIRED` anyway (clocks differ). Tokens and the secret never reach a log line or an
exception message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from providers.base import BeforeRequest
from providers.errors import (
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    ProviderError,
    TransientError,
    error_for_status,
    retry_after_seconds,
)

Clock = Callable[[], datetime]
TOKEN_PATH = "/oauth2/token"
# Mint a new token this long before the cached one expires, so a call never carries one that
# dies in flight.
TOKEN_MARGIN = timedelta(minutes=5)


def system_clock() -> datetime:
    return datetime.now(UTC)


class WixAnswer(ProviderError):
    """A Wix error answer that an operation handles itself (e.g. 428 EVENT_CANCELLED)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


def error_code(response: httpx.Response) -> tuple[str, str]:
    """`(code, message)` from Wix's envelope `{message, details: {applicationError | ...}}`."""
    try:
        body = response.json()
    except ValueError:
        return "", response.reason_phrase
    if not isinstance(body, dict):
        return "", response.reason_phrase
    details = body.get("details") if isinstance(body.get("details"), dict) else {}
    application = details.get("applicationError") if details else None
    code = application.get("code", "") if isinstance(application, dict) else ""
    if not code and details and "validationError" in details:
        code = "INVALID_ARGUMENT"
    return str(code), str(body.get("message", ""))[:300]


def error_for(response: httpx.Response) -> ProviderError:
    """Wix's answer as calsync's error. 404s and 428s stay `WixAnswer`-shaped when an
    operation needs the code (see `WixInstance.call`)."""
    status = response.status_code
    code, message = error_code(response)
    text = f"wix {status} {code}: {message}".strip()
    if status == 403 and code == "APP_NOT_INSTALLED":
        return PermanentError(PermanentReason.TOKEN_REVOKED, text)
    if status == 404 and code == "SCHEDULE_NOT_FOUND":
        return PermanentError(PermanentReason.CALENDAR_DELETED, text)
    if status == 409 and code == "REVISION_MISMATCH":
        return PreconditionFailed(text)
    if status == 428:
        return WixAnswer(status, code, message)
    return error_for_status(status, text, retry_after_seconds(response.headers.get("Retry-After")))


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: datetime


class TokenCache:
    """App tokens per instance id, shared by every schedule of the app (thread-safe)."""

    def __init__(self, clock: Clock, margin: timedelta = TOKEN_MARGIN) -> None:
        self.clock = clock
        self.margin = margin
        self.minted = 0  # tokens fetched, for tests and metrics
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()

    def valid(self, instance_id: str) -> str | None:
        with self._lock:
            token = self._tokens.get(instance_id)
        if token is None or self.clock() >= token.expires_at - self.margin:
            return None
        return token.value

    def store(self, instance_id: str, value: str, lifetime_s: float) -> None:
        with self._lock:
            expires = self.clock() + timedelta(seconds=lifetime_s)
            self._tokens[instance_id] = _Token(value, expires)
            self.minted += 1

    def forget(self, instance_id: str, value: str) -> None:
        """Drop the token Wix refused, unless another thread already replaced it."""
        with self._lock:
            token = self._tokens.get(instance_id)
            if token is not None and token.value == value:
                del self._tokens[instance_id]


@dataclass(frozen=True)
class Credentials:
    app_id: str
    app_secret: str = ""

    def __repr__(self) -> str:  # the secret stays out of reprs and tracebacks
        return f"Credentials(app_id={self.app_id!r})"


class WixInstance:
    """Authenticated calls to Wix on behalf of one app instance (one tenant's site)."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        instance_id: str,
        http: httpx.Client,
        tokens: TokenCache,
        before_request: BeforeRequest,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.instance_id = instance_id
        self.http = http
        self.tokens = tokens
        self.before_request = before_request
        self._mint_lock = threading.Lock()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call; a token Wix says expired is replaced once and the call repeated."""
        token = self.token()
        response = self._send(method, path, body, token)
        if response.status_code == 401 and error_code(response)[0] == "TOKEN_EXPIRED":
            self.tokens.forget(self.instance_id, token)
            response = self._send(method, path, body, self.token())
        if response.status_code >= 400:
            raise error_for(response)
        return _json_object(response)

    def token(self) -> str:
        cached = self.tokens.valid(self.instance_id)
        if cached is not None:
            return cached
        with self._mint_lock:  # one mint per instance at a time, not one per waiting thread
            cached = self.tokens.valid(self.instance_id)
            return cached if cached is not None else self._mint()

    def _mint(self) -> str:
        body = {
            "grant_type": "client_credentials",
            "client_id": self.credentials.app_id,
            "client_secret": self.credentials.app_secret,
            "instance_id": self.instance_id,
        }
        response = self._send("POST", TOKEN_PATH, body, None)
        if response.status_code >= 400:
            raise error_for(response)
        answer = _json_object(response)
        value, lifetime = answer.get("access_token"), answer.get("expires_in", 14400)
        if not isinstance(value, str) or not isinstance(lifetime, int | float):
            raise TransientError("wix token endpoint: unexpected answer")
        self.tokens.store(self.instance_id, value, float(lifetime))
        return value

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> httpx.Response:
        self.before_request()
        headers = {} if token is None else {"Authorization": token}
        try:
            return self.http.request(method, f"{self.base_url}{path}", json=body, headers=headers)
        except httpx.TimeoutException:
            raise TransientError(f"wix: timeout on {method} {path}") from None
        except httpx.TransportError as error:
            raise TransientError(f"wix: network error ({type(error).__name__})") from None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise TransientError(f"wix answered {response.status_code} without JSON") from None
    if not isinstance(body, dict):
        raise TransientError("wix answered with something other than a JSON object")
    return body
