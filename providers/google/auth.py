"""Google's OAuth 2.0 endpoints, as calsync uses them to connect an account.

`consent_url` sends the user to Google; Google redirects back with a code; `exchange_code` trades
it for tokens and learns the account's email from the OpenID Connect id_token (asked for with the
`openid email` scopes, so no extra userinfo request and no extra setting); `refresh` gets a new
access token. The signed `state` is the API layer's business, not this module's.

The id_token comes straight from the token endpoint over the connection we opened, which OIDC
Core §3.1.3.7 accepts in place of checking its signature; its audience, issuer and expiry are
still checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from config import Settings
from providers.base import BeforeRequest, CalendarInfo
from providers.errors import (
    PermanentError,
    PermanentReason,
    ProviderError,
    RateLimited,
    TransientError,
    retry_after_seconds,
)
from providers.oauth import OAuthFlow, SignedIn

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
SCOPES = (CALENDAR_SCOPE, "openid", "email")
ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
# Errors Google's token endpoint answers when trying again later may help.
_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "internal_failure", "server_error"})


@dataclass(frozen=True)
class GoogleOAuthClient:
    """calsync's OAuth client at Google, and where its token endpoint is (from settings)."""

    client_id: str
    client_secret: str = field(repr=False)
    token_url: str
    timeout_seconds: float = 30.0
    before_request: BeforeRequest | None = field(default=None, compare=False)


@dataclass(frozen=True)
class GoogleTokens:
    """What a connection keeps (encrypted, by the caller) to act for one Google account."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expiry: datetime
    scopes: tuple[str, ...]
    email: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "accessToken": self.access_token,
            "refreshToken": self.refresh_token,
            "expiry": self.expiry.isoformat(),
            "scopes": list(self.scopes),
            "email": self.email,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GoogleTokens:
        expiry = datetime.fromisoformat(str(data["expiry"]))
        return cls(
            access_token=str(data["accessToken"]),
            refresh_token=str(data["refreshToken"]),
            expiry=expiry if expiry.tzinfo else expiry.replace(tzinfo=UTC),
            scopes=tuple(str(s) for s in data.get("scopes", ())),
            email=str(data["email"]),
        )


def consent_url(client_id: str, redirect_uri: str, state: str, auth_url: str) -> str:
    """Google's consent screen: offline access (a refresh token), asked again every time
    (`prompt=consent`, so a reconnect gets a refresh token too), the calendar and email scopes."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(SCOPES),
        "access_type": "offline",
        "prompt": "consent",
        "include_granted_scopes": "true",
        "state": state,
    }
    separator = "&" if "?" in auth_url else "?"
    return f"{auth_url}{separator}{urlencode(params)}"


def exchange_code(
    code: str,
    redirect_uri: str,
    client: GoogleOAuthClient,
    *,
    code_verifier: str | None = None,
    http: httpx.Client | None = None,
) -> GoogleTokens:
    """Trade the consent screen's code for tokens and the account's email."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    body = _token_request(form, client, http)
    refresh_token = body.get("refresh_token")
    if not refresh_token:
        raise PermanentError(PermanentReason.TOKEN_REVOKED, "Google returned no refresh token")
    scopes = _scopes(body, ())
    if CALENDAR_SCOPE not in scopes:
        raise PermanentError(PermanentReason.FORBIDDEN, "the calendar scope was not granted")
    return GoogleTokens(
        access_token=str(body["access_token"]),
        refresh_token=str(refresh_token),
        expiry=_expiry(body),
        scopes=scopes,
        email=_email(body, client.client_id),
    )


def refresh(
    tokens: GoogleTokens, client: GoogleOAuthClient, *, http: httpx.Client | None = None
) -> GoogleTokens:
    """A new access token; Google keeps the refresh token unless it sends a new one."""
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    body = _token_request(form, client, http)
    return GoogleTokens(
        access_token=str(body["access_token"]),
        refresh_token=str(body.get("refresh_token") or tokens.refresh_token),
        expiry=_expiry(body),
        scopes=_scopes(body, tokens.scopes),
        email=tokens.email,
    )


def token_endpoint_error(
    status: int, body: Mapping[str, Any], retry_after: str | None
) -> ProviderError:
    """A refusal of the token endpoint as a provider error (never quoting a token)."""
    error = str(body.get("error") or "")
    if error == "invalid_grant":
        return PermanentError(PermanentReason.TOKEN_REVOKED, "Google refused the grant")
    if status == 429:
        return RateLimited("token endpoint rate limit", retry_after_seconds(retry_after))
    if status >= 500 or error in _TRANSIENT_ERRORS:
        return TransientError(f"token endpoint answered {status}", retry_after_seconds(retry_after))
    return PermanentError(PermanentReason.FORBIDDEN, f"token endpoint refused: {error or status}")


def _token_request(
    form: dict[str, str], client: GoogleOAuthClient, http: httpx.Client | None
) -> dict[str, Any]:
    form = {**form, "client_id": client.client_id, "client_secret": client.client_secret}
    if client.before_request is not None:
        client.before_request()
    try:
        if http is not None:
            response = http.post(client.token_url, data=form, timeout=client.timeout_seconds)
        else:
            with httpx.Client(timeout=client.timeout_seconds) as own:
                response = own.post(client.token_url, data=form)
    except httpx.HTTPError as error:
        raise TransientError(f"token endpoint unreachable: {type(error).__name__}") from None
    body = _json(response)
    if response.status_code != 200:
        raise token_endpoint_error(response.status_code, body, response.headers.get("Retry-After"))
    if not body.get("access_token"):
        raise TransientError("token endpoint answered without an access token")
    return body


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _expiry(body: Mapping[str, Any]) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in") or 3600))


def _scopes(body: Mapping[str, Any], default: tuple[str, ...]) -> tuple[str, ...]:
    granted = str(body.get("scope") or "").split()
    return tuple(granted) if granted else default


def _email(body: Mapping[str, Any], client_id: str) -> str:
    """The account's email from the id_token (see the module docstring on its signature)."""
    raw = body.get("id_token")
    if not raw:
        raise PermanentError(PermanentReason.FORBIDDEN, "no id_token: email scope not granted")
    try:
        claims = jwt.decode(str(raw), options={"verify_signature": False})
    except jwt.PyJWTError:
        raise PermanentError(PermanentReason.FORBIDDEN, "unreadable id_token") from None
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences or claims.get("iss") not in ISSUERS:
        raise PermanentError(PermanentReason.FORBIDDEN, "id_token is not for this client")
    if float(claims.get("exp") or 0) < datetime.now(UTC).timestamp() - 300:
        raise PermanentError(PermanentReason.FORBIDDEN, "id_token has expired")
    email = claims.get("email")
    if not email:
        raise PermanentError(PermanentReason.FORBIDDEN, "id_token carries no email")
    return str(email)


def _configured(settings: Settings) -> bool:
    return bool(settings.google_client_id and settings.google_client_secret.get_secret_value())


def _consent(settings: Settings, redirect_uri: str, state: str) -> str:
    return consent_url(settings.google_client_id, redirect_uri, state,
                       str(settings.google_auth_url))  # fmt: skip


def _exchange(settings: Settings, code: str, redirect_uri: str) -> SignedIn:
    client = GoogleOAuthClient(
        settings.google_client_id, settings.google_client_secret.get_secret_value(),
        str(settings.google_token_url),
    )  # fmt: skip
    tokens = exchange_code(code, redirect_uri, client)
    # A Google account's primary calendar is named by the account's email.
    primary = CalendarInfo(remote_id=tokens.email, name=tokens.email, primary=True)
    return SignedIn(tokens.email, tokens.to_dict(), tokens.expiry, primary)


OAUTH = OAuthFlow(_configured, _consent, _exchange)
