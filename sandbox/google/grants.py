"""OAuth 2.0 state: registered clients, authorization codes, grants and their tokens.

A grant is one user's consent to one client; its refresh token and access tokens die with it
(revocation, or the user removing the app), after which the token endpoint answers
`invalid_grant` and the API 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
ISSUER = "https://accounts.google.com"


class OAuthError(Exception):
    """An error of the token or revocation endpoint: `{"error", "error_description"}`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()  # empty: any loopback redirect is accepted


@dataclass(frozen=True)
class Caller:
    """Who an API request acts for."""

    email: str
    client_id: str
    scopes: frozenset[str]


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    email: str
    scope: str
    issue_refresh_token: bool
    expires_at: datetime
    challenge: str | None = None
    challenge_method: str = "plain"
    used: bool = False


@dataclass
class Grant:
    id: str
    client_id: str
    email: str
    scope: str
    revoked: bool = False
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: set[str] = field(default_factory=set)


class Grants:
    def __init__(self) -> None:
        self.clients: dict[str, OAuthClient] = {}
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}
        self._refresh: dict[str, str] = {}  # refresh token -> grant id
        self._access: dict[str, tuple[str, datetime]] = {}  # token -> (grant id, expiry)
        self._consented: set[tuple[str, str]] = set()

    # -- consent ---------------------------------------------------------------------------

    def issue_code(
        self,
        client_id: str,
        redirect_uri: str,
        email: str,
        scope: str,
        *,
        offline: bool,
        force_consent: bool,
        challenge: tuple[str, str] | None,
        expires_at: datetime,
    ) -> str:
        # Google hands out a refresh token on the first offline consent, or when prompt=consent.
        first = (client_id, email) not in self._consented
        self._consented.add((client_id, email))
        code = "4/0" + secrets.token_urlsafe(32)
        self.codes[code] = AuthCode(
            client_id=client_id,
            redirect_uri=redirect_uri,
            email=email,
            scope=scope,
            issue_refresh_token=offline and (first or force_consent),
            expires_at=expires_at,
            challenge=challenge[0] if challenge else None,
            challenge_method=challenge[1] if challenge else "plain",
        )
        return code

    # -- token endpoint ----------------------------------------------------------------------

    def authenticate_client(self, client_id: str | None, secret: str | None) -> OAuthClient:
        client = self.clients.get(client_id or "")
        if client is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if not hmac.compare_digest(client.client_secret, secret or ""):
            raise OAuthError(401, "invalid_client", "Unauthorized")
        return client

    def exchange_code(
        self,
        client: OAuthClient,
        code: str,
        redirect_uri: str | None,
        verifier: str | None,
        now: datetime,
    ) -> AuthCode:
        issued = self.codes.get(code)
        if issued is None or issued.used or issued.client_id != client.client_id:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        if now >= issued.expires_at:
            raise OAuthError(400, "invalid_grant", "Bad Request")
        issued.used = True  # single use, even when the rest of the request is wrong
        if redirect_uri != issued.redirect_uri:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        _check_verifier(issued, verifier)
        return issued

    def start_grant(self, client_id: str, email: str, scope: str) -> Grant:
        grant = Grant(id=secrets.token_hex(8), client_id=client_id, email=email, scope=scope)
        self.grants[grant.id] = grant
        return grant

    def grant_for_refresh(self, client: OAuthClient, refresh_token: str) -> Grant:
        grant = self.grants.get(self._refresh.get(refresh_token, ""))
        if grant is None or grant.revoked:
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        if grant.client_id != client.client_id:
            raise OAuthError(400, "unauthorized_client", "Unauthorized")
        return grant

    def token_response(
        self,
        grant: Grant,
        client: OAuthClient,
        now: datetime,
        lifetime: float,
        with_refresh_token: bool,
    ) -> dict[str, Any]:
        access = "ya29." + secrets.token_urlsafe(32)
        self._access[access] = (grant.id, now + timedelta(seconds=lifetime))
        grant.access_tokens.add(access)
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(lifetime),
            "scope": grant.scope,
            "token_type": "Bearer",
        }
        if with_refresh_token:
            refresh = "1//0" + secrets.token_urlsafe(32)
            self._refresh[refresh] = grant.id
            grant.refresh_tokens.add(refresh)
            body["refresh_token"] = refresh
        if "openid" in grant.scope.split():
            body["id_token"] = id_token(grant.email, client, now, lifetime)
        return body

    # -- revocation and API access -----------------------------------------------------------

    def revoke_token(self, token: str) -> bool:
        """Revoking either kind of token revokes the whole grant, as Google does."""
        grant_id = self._refresh.get(token) or self._access.get(token, ("", None))[0]
        grant = self.grants.get(grant_id)
        if grant is None or grant.revoked:
            return False
        grant.revoked = True
        return True

    def revoke_user(self, email: str | None = None, client_id: str | None = None) -> int:
        count = 0
        for grant in self.grants.values():
            if email in (None, grant.email) and client_id in (None, grant.client_id):
                count += not grant.revoked
                grant.revoked = True
                self._consented.discard((grant.client_id, grant.email))
        return count

    def expire_access_tokens(self, now: datetime, email: str | None = None) -> None:
        for token, (grant_id, _) in list(self._access.items()):
            if email in (None, self.grants[grant_id].email):
                self._access[token] = (grant_id, now)

    def caller(self, access_token: str, now: datetime) -> Caller | None:
        grant_id, expires_at = self._access.get(access_token, ("", None))
        grant = self.grants.get(grant_id)
        if grant is None or grant.revoked or expires_at is None or now >= expires_at:
            return None
        return Caller(grant.email, grant.client_id, frozenset(grant.scope.split()))


def id_token(email: str, client: OAuthClient, now: datetime, lifetime: float) -> str:
    """An OpenID Connect id_token, signed HS256 with the client secret (allowed by OIDC Core
    §10.1); the sandbox has no RSA keys for Google's certificate endpoint."""
    issued = int(now.timestamp())
    claims = {
        "iss": ISSUER,
        "azp": client.client_id,
        "aud": client.client_id,
        "sub": subject(email),
        "email": email,
        "email_verified": True,
        "iat": issued,
        "exp": issued + int(lifetime),
    }
    signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(json.dumps(claims).encode())
    mac = hmac.new(client.client_secret.encode(), signing_input.encode(), hashlib.sha256)
    return signing_input + "." + _b64(mac.digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def subject(email: str) -> str:
    """A stable numeric user id, like Google's `sub`."""
    return str(int(hashlib.sha256(email.encode()).hexdigest()[:15], 16))


def _check_verifier(code: AuthCode, verifier: str | None) -> None:
    if code.challenge is None:
        return
    if not verifier:
        raise OAuthError(400, "invalid_grant", "Missing code verifier.")
    if code.challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = _b64(digest)
    else:
        computed = verifier
    if not hmac.compare_digest(computed, code.challenge):
        raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
