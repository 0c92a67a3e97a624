"""Signing in to Microsoft 365 / Outlook with MSAL (a confidential client).

The API's OAuth routes call `consent_url` and `exchange_code`; workers call `refresh` through
`MicrosoftAccount`. The signed, single-use `state` is made and checked by the caller; here it only
rides along on the consent URL. Tokens come back as `MicrosoftTokens`, which the caller stores
encrypted (`to_dict`) and hands back (`from_dict`).

MSAL adds `offline_access`, `openid` and `profile` to every request itself (and refuses them when
given), so `SCOPES` names only the Graph permissions: the refresh token comes from
`offline_access`, the account's sign-in name from the ID token that `openid profile` brings.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from config import Settings
from providers.errors import PermanentError, PermanentReason, ProviderError, TransientError
from providers.oauth import OAuthFlow, SignedIn

GRAPH_SCOPE_PREFIX = "https://graph.microsoft.com/"
SCOPES = (f"{GRAPH_SCOPE_PREFIX}Calendars.ReadWrite", f"{GRAPH_SCOPE_PREFIX}User.Read")
# Authorities MSAL knows; any other host (the sandbox, a sovereign cloud proxy) skips discovery.
_KNOWN_HOSTS = {"login.microsoftonline.com", "login.microsoft.com", "login.windows.net"}
# A refresh is for good refused with these; anything else may pass.
_REVOKED = {"invalid_grant", "interaction_required", "consent_required"}
_TRANSIENT = {"temporarily_unavailable", "server_error", "request_timeout"}

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MicrosoftTokens:
    """What calsync keeps of a Microsoft sign-in. Secrets stay out of `repr`."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    username: str  # the sign-in name (UPN, usually the email address)
    account_id: str | None = None  # MSAL's home account id, "{oid}.{tid}"
    scopes: tuple[str, ...] = ()

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or _utcnow()) + timedelta(seconds=seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.isoformat(),
            "username": self.username,
            "account_id": self.account_id,
            "scopes": list(self.scopes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MicrosoftTokens:
        expires = datetime.fromisoformat(str(data["expires_at"]))
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=str(data["refresh_token"]),
            expires_at=expires if expires.tzinfo else expires.replace(tzinfo=UTC),
            username=str(data.get("username") or ""),
            account_id=data.get("account_id"),
            scopes=tuple(data.get("scopes") or ()),
        )


class MicrosoftAuth:
    """The app registration (client id and secret) at one authority."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        authority: str,
        *,
        http_client: requests.Session | None = None,
        timeout: float = 30.0,
        clock: Clock = _utcnow,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.authority = authority.rstrip("/")
        self._http = http_client
        self._timeout = timeout
        self._clock = clock
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Any, http_client: requests.Session | None = None
    ) -> MicrosoftAuth:
        return cls(
            settings.microsoft_client_id,
            settings.microsoft_client_secret.get_secret_value(),
            str(settings.microsoft_authority_url),
            http_client=http_client,
        )

    def consent_url(self, redirect_uri: str, state: str, *, login_hint: str | None = None) -> str:
        """Where to send the user to grant calendar access; Microsoft redirects back with
        `code` and the same `state`."""
        app = self._msal()
        with warnings.catch_warnings():
            # MSAL steers towards initiate_auth_code_flow, whose PKCE verifier would have to be
            # kept server side between redirect and callback; a confidential client with a
            # signed state does not need it.
            warnings.simplefilter("ignore", DeprecationWarning)
            url: str = app.get_authorization_request_url(
                list(SCOPES), state=state, redirect_uri=redirect_uri, login_hint=login_hint
            )
        return url

    def exchange_code(self, code: str, redirect_uri: str) -> MicrosoftTokens:
        """Redeem the authorization code (once). A refused code raises TOKEN_REVOKED."""

        def redeem(app: msal.ConfidentialClientApplication) -> dict[str, Any]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                result: dict[str, Any] = app.acquire_token_by_authorization_code(
                    code, list(SCOPES), redirect_uri=redirect_uri
                )
            return result

        return self._tokens(self._call(redeem), previous=None)

    def refresh(self, tokens: MicrosoftTokens) -> MicrosoftTokens:
        """New tokens from the refresh token; refused for good -> PermanentError(TOKEN_REVOKED)."""

        def redeem(app: msal.ConfidentialClientApplication) -> dict[str, Any]:
            result: dict[str, Any] = app.acquire_token_by_refresh_token(
                tokens.refresh_token, list(SCOPES)
            )
            return result

        return self._tokens(self._call(redeem), previous=tokens)

    # -- internals ---------------------------------------------------------------------------

    def _msal(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                host = urlsplit(self.authority).hostname or ""
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id,
                        client_credential=self.client_secret,
                        authority=self.authority,
                        instance_discovery=host in _KNOWN_HOSTS,
                        http_client=self._http,
                        timeout=self._timeout,
                    )
                except (requests.RequestException, ValueError) as error:
                    # MSAL reads the authority's OpenID configuration when it starts.
                    raise TransientError(f"authority unavailable: {type(error).__name__}") from None
            return self._app

    def _call(
        self, redeem: Callable[[msal.ConfidentialClientApplication], dict[str, Any]]
    ) -> dict[str, Any]:
        app = self._msal()
        try:
            result = redeem(app)
        except (requests.RequestException, ValueError) as error:
            raise TransientError(f"token endpoint: {type(error).__name__}") from None
        finally:
            _forget_accounts(app)  # the MSAL cache is not where calsync keeps tokens
        if "access_token" not in result:
            raise _refusal(result)
        return result

    def _tokens(self, result: dict[str, Any], previous: MicrosoftTokens | None) -> MicrosoftTokens:
        claims = result.get("id_token_claims") or {}
        oid, tid = claims.get("oid"), claims.get("tid")
        refresh_token = result.get("refresh_token") or (previous.refresh_token if previous else "")
        if not refresh_token:
            raise PermanentError(
                PermanentReason.TOKEN_REVOKED, "no refresh token granted (offline_access)"
            )
        return MicrosoftTokens(
            access_token=str(result["access_token"]),
            refresh_token=str(refresh_token),
            expires_at=self._clock() + timedelta(seconds=int(result.get("expires_in", 3600))),
            username=str(
                claims.get("preferred_username") or (previous.username if previous else "")
            ),
            account_id=f"{oid}.{tid}"
            if oid and tid
            else (previous.account_id if previous else None),
            scopes=tuple(str(result.get("scope", "")).split()),
        )


def _refusal(result: Mapping[str, Any]) -> ProviderError:
    """An MSAL error answer as a provider error (the description may be logged: no secrets)."""
    error = str(result.get("error", "unknown_error"))
    codes = result.get("error_codes") or []
    detail = f"{error} {codes}" if codes else error
    if error in _REVOKED:
        return PermanentError(PermanentReason.TOKEN_REVOKED, f"sign-in refused: {detail}")
    if error in _TRANSIENT:
        return TransientError(f"token endpoint: {detail}")
    if error in ("invalid_client", "unauthorized_client"):
        return PermanentError(PermanentReason.FORBIDDEN, f"app credentials refused: {detail}")
    return PermanentError(PermanentReason.TOKEN_REVOKED, f"sign-in failed: {detail}")


def _forget_accounts(app: msal.ConfidentialClientApplication) -> None:
    for account in app.get_accounts():
        app.remove_account(account)


def _configured(settings: Settings) -> bool:
    return bool(
        settings.microsoft_client_id and settings.microsoft_client_secret.get_secret_value()
    )


def _consent(settings: Settings, redirect_uri: str, state: str) -> str:
    return MicrosoftAuth.from_settings(settings).consent_url(redirect_uri, state)


def _exchange(settings: Settings, code: str, redirect_uri: str) -> SignedIn:
    tokens = MicrosoftAuth.from_settings(settings).exchange_code(code, redirect_uri)
    return SignedIn(tokens.username, tokens.to_dict(), tokens.expires_at, primary=None)


OAUTH = OAuthFlow(_configured, _consent, _exchange)
