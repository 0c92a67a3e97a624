"""Microsoft Graph through the O365 package's connection, on calsync's terms.

- Base URL: an `MSGraphProtocol` subclass whose `_protocol_url` is the configured Graph base
  (O365 has no other way to point elsewhere).
- Retries: O365 mounts a urllib3 `Retry` that sleeps through 429/5xx on GET/DELETE/PUT only
  (never POST/PATCH) and makes requests `before_request` never sees. We turn it off
  (`request_retries=0`, no `requests_delay`): every 429/5xx surfaces as `RateLimited` /
  `TransientError` and the pipeline backs off, for every method alike.
- Tokens: O365's own refresh (its MSAL client for login.microsoftonline.com, triggered on
  401/403 when its token cache says "expired") is bypassed: requests go out with
  `ignore40x=False`, and `GraphClient` refreshes through `MicrosoftAuth` shortly before expiry
  and once on a 401, handing new tokens to `on_tokens`.
- Batches: `batch` sends up to 20 calls as one JSON `$batch` request; an item's error reads as
  the same call's would alone (`graph_error`), the batch request's own is raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import requests
from O365 import Account
from O365.connection import Connection, MSGraphProtocol
from O365.utils.token import MemoryTokenBackend

from providers.base import BeforeRequest
from providers.errors import (
    CursorExpired,
    ErrorMaker,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    ProviderError,
    TransientError,
    error_for_status,
    retry_after_seconds,
)
from providers.microsoft.auth import MicrosoftAuth, MicrosoftTokens

T = TypeVar("T")
TokensSaved = Callable[[MicrosoftTokens], None]
REFRESH_MARGIN = 120.0  # seconds before expiry a token is renewed
EXPIRED_TOKEN_CODES = {"syncStateNotFound", "resyncRequired"}


class _DropRequestDumps(logging.Filter):
    """At DEBUG O365 logs each request's session headers (the bearer token) and its parameters
    (the JSON body: a subscription's clientState, event contents): never let those out."""

    _SECRET_BEARING = ("Session default headers", "Request parameters")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self._SECRET_BEARING)


logging.getLogger("O365.connection").addFilter(_DropRequestDumps())


@lru_cache(maxsize=16)
def protocol_for(graph_base_url: str) -> type[MSGraphProtocol]:
    """An `MSGraphProtocol` aimed at `graph_base_url` (e.g. "https://graph.microsoft.com/")."""
    base = graph_base_url.rstrip("/") + "/"
    return type("CalsyncGraphProtocol", (MSGraphProtocol,), {"_protocol_url": base})


class _HookedConnection(Connection):
    """O365's connection with calsync's hook before every request and no token magic."""

    def __init__(self, credentials: tuple[str, str], **kwargs: Any) -> None:
        self.before_request: BeforeRequest = kwargs.pop("before_request")
        super().__init__(credentials, **kwargs)

    def _internal_request(
        self,
        session_obj: requests.Session,
        url: str,
        method: str,
        ignore40x: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        self.before_request()
        response: requests.Response = super()._internal_request(
            session_obj, url, method, ignore40x=False, **kwargs
        )
        return response


class _CalsyncAccount(Account):
    connection_constructor = _HookedConnection


class _Unauthorized(Exception):
    """A 401: the access token was refused; refresh once and try again."""


@dataclass(frozen=True)
class GraphCall:
    """One Graph request, sent alone (`GraphClient.call`) or as an item of a `$batch`."""

    method: str
    url: str
    params: Mapping[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


# What one item of a `$batch` came to: its JSON answer ({} when it has none), or its error.
BatchAnswer = dict[str, Any] | ProviderError


class GraphClient:
    """One signed-in mailbox: O365's account and connection, with calsync's tokens."""

    def __init__(
        self,
        tokens: MicrosoftTokens,
        auth: MicrosoftAuth,
        *,
        graph_base_url: str,
        before_request: BeforeRequest | None = None,
        on_tokens: TokensSaved | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.tokens = tokens
        self.auth = auth
        self.on_tokens = on_tokens or (lambda _tokens: None)
        self.account = _CalsyncAccount(
            (auth.client_id, auth.client_secret),
            protocol=protocol_for(graph_base_url)(),
            main_resource="me",
            token_backend=MemoryTokenBackend(),
            before_request=before_request or (lambda: None),
            request_retries=0,
            requests_delay=0,
            timeout=timeout,
            raise_http_errors=True,
        )
        self.con: Connection = self.account.con
        self.con.session = self.con.get_session()
        self.con.update_session_auth_header(access_token=tokens.access_token)

    @property
    def service_url(self) -> str:
        url: str = self.account.protocol.service_url
        return url

    def me(self, path: str) -> str:
        """The URL of `path` under the signed-in user (`/me`)."""
        return f"{self.service_url}me{path}"

    # -- requests ---------------------------------------------------------------------------

    def run(self, operation: Callable[[], T]) -> T:
        """Run O365 calls with a fresh token, one refresh on 401, and errors translated."""
        if self.tokens.expires_within(REFRESH_MARGIN):
            self._refresh()
        try:
            return _translated(operation)
        except _Unauthorized:
            self._refresh()
        try:
            return _translated(operation)
        except _Unauthorized:
            raise PermanentError(
                PermanentReason.TOKEN_REVOKED, "Graph refused a fresh token"
            ) from None

    def send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        self._check_own(url)

        def call() -> requests.Response:
            extra: dict[str, Any] = {"headers": dict(headers or {})}
            if params:
                extra["params"] = params
            if body is not None:
                extra["data"] = body
            response: requests.Response = self.con.oauth_request(url, method.lower(), **extra)
            return response

        return self.run(call)

    def call(self, call: GraphCall) -> dict[str, Any]:
        """The call's JSON answer ({} when it has none)."""
        response = self.send(
            call.method, call.url, params=dict(call.params), body=call.body,
            headers=dict(call.headers),
        )  # fmt: skip
        return _json(response) if response.content else {}

    def batch(self, calls: Sequence[GraphCall]) -> list[BatchAnswer]:
        """The calls (at most 20) as one `$batch` request: each one's answer, in order. An error
        of the batch request itself (throttled, unauthorised, unreachable) is raised."""
        items = [self._batch_item(str(n), call) for n, call in enumerate(calls)]
        answer = self.post_json(f"{self.service_url}$batch", {"requests": items})
        # Graph answers the items in any order; each names the request it answers.
        by_id = {str(r.get("id")): r for r in answer.get("responses") or [] if isinstance(r, dict)}
        if by_id.keys() != {item["id"] for item in items}:
            raise TransientError("Graph's batch answer does not answer each request")
        return [_batch_answer(by_id[item["id"]]) for item in items]

    def get_json(
        self, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return _json(self.send("GET", url, params=params, headers=headers))

    def post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return _json(self.send("POST", url, body=body))

    def pages(
        self, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following `@odata.nextLink`."""
        page = self.get_json(url, params, headers)
        while True:
            yield from page.get("value") or []
            link = page.get("@odata.nextLink")
            if not link:
                return
            page = self.get_json(str(link), headers=headers)

    def close(self) -> None:
        """Close O365's HTTP sessions (otherwise they close at garbage collection)."""
        for name in ("session", "naive_session"):
            session = getattr(self.con, name, None)
            if session is not None:
                session.close()
                setattr(self.con, name, None)

    def _batch_item(self, item_id: str, call: GraphCall) -> dict[str, Any]:
        self._check_own(call.url)
        url = "/" + call.url.removeprefix(self.service_url)  # items name URLs under the version
        if call.params:
            url += "?" + urlencode(call.params, safe="$", quote_via=quote)
        item: dict[str, Any] = {"id": item_id, "method": call.method, "url": url}
        headers = dict(call.headers)
        if call.body is not None:
            item["body"] = call.body
            headers["Content-Type"] = "application/json"  # Graph refuses a body without it
        if headers:
            item["headers"] = headers
        return item

    def _check_own(self, url: str) -> None:
        # Links come from Graph answers and stored cursors; the bearer token goes nowhere else.
        if not url.startswith(self.service_url):
            raise CursorExpired("a link outside the configured Graph base URL")

    def _refresh(self) -> None:
        self.tokens = self.auth.refresh(self.tokens)
        self.con.update_session_auth_header(access_token=self.tokens.access_token)
        self.on_tokens(self.tokens)


def _translated(operation: Callable[[], T]) -> T:
    try:
        return operation()
    except requests.HTTPError as error:
        response = error.response
        if response is None:
            raise TransientError(f"Graph request failed: {type(error).__name__}") from None
        if response.status_code == 401:
            raise _Unauthorized() from None
        raise error_for(response) from None
    except (requests.Timeout, requests.ConnectionError) as error:
        raise TransientError(f"network: {type(error).__name__}") from None
    except requests.RequestException as error:
        raise TransientError(f"Graph request failed: {type(error).__name__}") from None


def graph_code(body: Any) -> str:
    """Graph's error code (`{"error": {"code": ...}}`), or ""."""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code") or "") if isinstance(error, dict) else ""


# Graph answers 409 for a write that lost a race, and 410 for a delta link it forgot.
LADDER: dict[int, ErrorMaker] = {
    409: lambda message, _: PreconditionFailed(message),
    410: lambda message, _: CursorExpired(message),
}


def error_for(response: requests.Response) -> ProviderError:
    """A Graph error answer as a provider error (the message names status and code only)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return graph_error(response.status_code, body, response.headers.get("Retry-After"))


def graph_error(status: int, body: Any, retry_after: str | None) -> ProviderError:
    """An error answer, of a request alone or of one item of a batch."""
    code = graph_code(body)
    what = f"Graph answered {status} {code}".rstrip()
    if status < 500 and status != 429 and code in EXPIRED_TOKEN_CODES:
        return CursorExpired(what)
    return error_for_status(status, what, retry_after_seconds(retry_after), LADDER)


def _batch_answer(item: dict[str, Any]) -> BatchAnswer:
    status, body = int(item.get("status") or 0), item.get("body")
    if 200 <= status < 300:
        return body if isinstance(body, dict) else {}
    headers = item.get("headers")
    named = {str(k).lower(): v for k, v in headers.items()} if isinstance(headers, dict) else {}
    return graph_error(status, body, named.get("retry-after"))


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise TransientError("Graph answered with something other than JSON") from None
    if not isinstance(body, dict):
        raise TransientError("Graph answered with an unexpected JSON shape")
    return body
