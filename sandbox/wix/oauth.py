"""App access tokens: `POST /oauth2/token` with client credentials.

API calls send the token as `Authorization: <token>`; a `Bearer ` prefix is accepted too, since the
docs are silent on it and the token type is "Bearer". Tokens are opaque and live 14400 s by the
state's clock; there is no refresh token: a client mints a new one.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from sandbox.wix.errors import WixError, invalid
from sandbox.wix.model import App, Site
from sandbox.wix.web import read_json, wix_state

TOKEN_LIFETIME = timedelta(seconds=14400)


@dataclass(frozen=True)
class Grant:
    token: str
    app_id: str
    instance_id: str
    expires_at: datetime


class TokenIssuer:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}

    def exchange(
        self, body: Any, apps: Mapping[str, App], sites: Mapping[str, Site]
    ) -> dict[str, Any]:
        """Check a client-credentials request and answer it as Wix does."""
        if not isinstance(body, dict):
            raise invalid("body", "expected a JSON object")
        if body.get("grant_type") != "client_credentials":
            raise WixError(400, "UNSUPPORTED_GRANT_TYPE", "grant_type must be client_credentials")
        for name in ("client_id", "client_secret", "instance_id"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise invalid(name, f"{name} is required")
        app = apps.get(body["client_id"])
        if app is None or not secrets.compare_digest(app.secret, body["client_secret"]):
            raise WixError(401, "INVALID_CLIENT", "unknown client_id or wrong client_secret")
        site = sites.get(body["instance_id"])
        if site is None or site.app_id != app.app_id or not site.installed:
            raise WixError(403, "APP_NOT_INSTALLED", "the app is not installed on this instance")
        grant = self._issue(app.app_id, site.instance_id)
        return {
            "access_token": grant.token,
            "token_type": "Bearer",
            "expires_in": int(TOKEN_LIFETIME.total_seconds()),
        }

    def resolve(self, authorization: str | None) -> Grant:
        """The grant behind an `Authorization` header, or 401."""
        token = (authorization or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        with self._lock:
            grant = self._grants.get(token)
        if grant is None:
            raise WixError(401, "UNAUTHENTICATED", "missing or unknown access token")
        if self._clock() >= grant.expires_at:
            raise WixError(401, "TOKEN_EXPIRED", "the access token has expired")
        return grant

    def revoke_instance(self, instance_id: str) -> None:
        with self._lock:
            self._grants = {
                token: grant
                for token, grant in self._grants.items()
                if grant.instance_id != instance_id
            }

    def _issue(self, app_id: str, instance_id: str) -> Grant:
        grant = Grant(
            token=f"OauthNG.JWS.sandbox.{secrets.token_urlsafe(32)}",
            app_id=app_id,
            instance_id=instance_id,
            expires_at=self._clock() + TOKEN_LIFETIME,
        )
        with self._lock:
            self._grants[grant.token] = grant
        return grant


async def token_endpoint(request: Request) -> JSONResponse:
    state = wix_state(request)
    return JSONResponse(state.exchange_token(await read_json(request)))


def authenticate(request: Request) -> Grant:
    return wix_state(request).tokens.resolve(request.headers.get("authorization"))
