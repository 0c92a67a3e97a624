"""The Microsoft identity platform (AAD v2) as far as calsync and MSAL use it.

`/{tenant}/v2.0/.well-known/openid-configuration`, `/{tenant}/oauth2/v2.0/authorize` (signs the
configured test user in at once and redirects with a code), `/{tenant}/oauth2/v2.0/token`
(authorization_code with optional PKCE, refresh_token, client_credentials), the JWKS, and the
instance-discovery document. MSAL only accepts https authorities, so serve the app with TLS for it
(see `tls.py`). API requests carry the issued access tokens as `Authorization: Bearer`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .errors import GraphError

if TYPE_CHECKING:
    from .state import GraphState

GRAPH_RESOURCE = "https://graph.microsoft.com/"
RESERVED_SCOPES = {"openid", "profile", "offline_access", "email"}
CODE_LIFETIME = timedelta(minutes=10)
_AADSTS = {
    "unknown_client": (400, "unauthorized_client", 700016,
                       "Application with identifier '{}' was not found in the directory."),
    "bad_secret": (401, "invalid_client", 7000215, "Invalid client secret provided."),
    "bad_code": (400, "invalid_grant", 9002313, "Invalid request. The code is malformed or "
                 "invalid."),
    "used_code": (400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed."),
    "expired_code": (400, "invalid_grant", 70008, "The provided authorization code or refresh "
                     "token has expired due to inactivity."),
    "bad_redirect": (400, "invalid_grant", 50011, "The redirect URI does not match the one used in "
                     "the authorization request."),
    "bad_verifier": (400, "invalid_grant", 50148, "The code_verifier does not match the "
                     "code_challenge supplied in the authorization request."),
    "bad_refresh": (400, "invalid_grant", 9002313, "Invalid request. The refresh token is "
                    "malformed or invalid."),
    "revoked": (400, "invalid_grant", 50173, "The provided grant has expired due to it being "
                "revoked, a fresh auth token is needed."),
    "bad_scope": (400, "invalid_scope", 1002012, "The provided value for scope is not valid. "
                  "Client credential flows must have a scope value with /.default suffixed."),
    "bad_grant_type": (400, "unsupported_grant_type", 70003, "The app requested an unsupported "
                       "grant type '{}'."),
}  # fmt: skip


@dataclass
class App:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()  # empty: any loopback redirect accepted


@dataclass
class _Code:
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: list[str]
    nonce: str | None
    challenge: str | None
    challenge_method: str
    expires: datetime
    used: bool = False


@dataclass
class Grant:
    """What an access or refresh token stands for."""

    client_id: str
    user_id: str | None  # None: an app-only (client credentials) token
    scopes: list[str]
    expires: datetime | None = None
    revoked: bool = False


@dataclass
class Caller:
    client_id: str
    user_id: str | None
    scopes: list[str] = field(default_factory=list)

    @property
    def app_only(self) -> bool:
        return self.user_id is None


class IdentityStore:
    def __init__(self, state: GraphState) -> None:
        self._state = state
        self._lock = threading.Lock()
        self.apps: dict[str, App] = {}
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}
        self.login_user: str | None = None  # upn or id signed in at /authorize; first user if None
        self.deny_consent = 0  # the next N authorizations answer error=access_denied
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)

    # ---- Python API -----------------------------------------------------------------------------

    def register_app(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uris: tuple[str, ...] | list[str] = (),
    ) -> App:
        app = App(
            client_id or str(uuid.uuid4()),
            client_secret or secrets.token_urlsafe(24),
            tuple(redirect_uris),
        )
        with self._lock:
            self.apps[app.client_id] = app
        return app

    def issue_tokens(
        self,
        user: str,
        *,
        client_id: str = "sandbox-client",
        scopes: tuple[str, ...] = (
            "Calendars.ReadWrite",
            "User.Read",
            "openid",
            "profile",
            "offline_access",
        ),
        issuer_base: str = "https://127.0.0.1",
    ) -> dict[str, Any]:
        """A token response as the token endpoint would give it, without the browser step."""
        user_id = self._state.mailbox(user).user.id
        return self._token_response(client_id, user_id, list(scopes), None, issuer_base)

    def revoke_refresh_tokens(self, user: str | None = None, token: str | None = None) -> int:
        """Revoke one refresh token, or all of a user's (or everyone's); returns how many."""
        user_id = None if user is None else self._state.mailbox(user).user.id
        with self._lock:
            hits = [
                g
                for t, g in self._refresh.items()
                if (token is None or t == token) and (user_id is None or g.user_id == user_id)
            ]
            for grant in hits:
                grant.revoked = True
        return len(hits)

    def expire_access_tokens(self, user: str | None = None) -> int:
        user_id = None if user is None else self._state.mailbox(user).user.id
        now = self._state.now()
        with self._lock:
            hits = [g for g in self._access.values() if user_id is None or g.user_id == user_id]
            for grant in hits:
                grant.expires = now
        return len(hits)

    def check_bearer(self, header: str | None) -> Caller:
        """The caller of an API request, or 401 InvalidAuthenticationToken."""
        if not header or not header.lower().startswith("bearer "):
            raise _unauthorized("Access token is empty.")
        with self._lock:
            grant = self._access.get(header[7:].strip())
        if grant is None or grant.revoked:
            raise _unauthorized("IDX14100: JWT is not well formed, or the token is unknown.")
        if grant.expires is not None and grant.expires <= self._state.now():
            raise _unauthorized("Lifetime validation failed, the token is expired.")
        return Caller(grant.client_id, grant.user_id, grant.scopes)

    # ---- authorize --------------------------------------------------------------------------

    def authorize(self, params: dict[str, str]) -> tuple[str, dict[str, str]]:
        """Sign the test user in: (redirect URI, reply parameters: code or error, and state)."""
        app = self.apps.get(params.get("client_id", ""))
        if app is None:
            raise GraphError(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application '{params.get('client_id')}' not found.",
            )
        redirect = params.get("redirect_uri", "")
        if not _redirect_allowed(app, redirect):
            raise GraphError(
                400,
                "invalid_request",
                f"AADSTS50011: The redirect URI '{redirect}' does not match.",
            )
        reply: dict[str, str] = {}
        if params.get("response_type") != "code":
            reply = {
                "error": "unsupported_response_type",
                "error_description": "AADSTS700054: response_type must be 'code'.",
            }
        elif self._consume_denial():
            reply = {
                "error": "access_denied",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
            }
        else:
            reply = {
                "code": self._new_code(app, params, redirect),
                "session_state": str(uuid.uuid4()),
            }
        if "state" in params:
            reply["state"] = params["state"]
        return redirect, reply

    def _consume_denial(self) -> bool:
        with self._lock:
            if self.deny_consent > 0:
                self.deny_consent -= 1
                return True
        return False

    def _new_code(self, app: App, params: dict[str, str], redirect: str) -> str:
        hint = params.get("login_hint") or self.login_user
        users = self._state.users()
        if not users:
            raise GraphError(400, "invalid_request", "The sandbox has no user to sign in.")
        user = self._state.mailbox(hint).user if hint else users[0]
        code = "0.A" + secrets.token_urlsafe(48)
        with self._lock:
            self._codes[code] = _Code(
                app.client_id,
                user.id,
                redirect,
                params.get("scope", "").split(),
                params.get("nonce"),
                params.get("code_challenge"),
                params.get("code_challenge_method", "plain"),
                self._state.now() + CODE_LIFETIME,
            )
        return code

    # ---- token ------------------------------------------------------------------------------

    def token(self, form: dict[str, str], basic: tuple[str, str] | None, base: str) -> Response:
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        app = self.apps.get(client_id)
        if app is None:
            return _aad_error("unknown_client", client_id)
        if not secrets.compare_digest(secret.encode(), app.client_secret.encode()):
            return _aad_error("bad_secret")
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            return self._redeem_code(app, form, base)
        if grant_type == "refresh_token":
            return self._redeem_refresh(app, form, base)
        if grant_type == "client_credentials":
            if form.get("scope", "").split() != [GRAPH_RESOURCE + ".default"]:
                return _aad_error("bad_scope")
            return JSONResponse(self._token_response(app.client_id, None, [".default"], None, base))
        return _aad_error("bad_grant_type", grant_type)

    def _redeem_code(self, app: App, form: dict[str, str], base: str) -> Response:
        with self._lock:
            code = self._codes.get(form.get("code", ""))
            problem = _code_problem(code, app, form, self._state.now())
            if code is not None and problem in (None, "bad_redirect", "bad_verifier"):
                code.used = True  # one attempt per code, as AAD
        if problem or code is None:
            return _aad_error(problem or "bad_code")
        scopes = form.get("scope", "").split() or code.scopes
        return JSONResponse(
            self._token_response(app.client_id, code.user_id, scopes, code.nonce, base)
        )

    def _redeem_refresh(self, app: App, form: dict[str, str], base: str) -> Response:
        with self._lock:
            grant = self._refresh.get(form.get("refresh_token", ""))
        if grant is None or grant.client_id != app.client_id:
            return _aad_error("bad_refresh")
        if grant.revoked:
            return _aad_error("revoked")
        scopes = form.get("scope", "").split() or grant.scopes
        return JSONResponse(self._token_response(app.client_id, grant.user_id, scopes, None, base))

    def _token_response(
        self, client_id: str, user_id: str | None, scopes: list[str], nonce: str | None, base: str
    ) -> dict[str, Any]:
        now, lifetime = self._state.now(), self._state.settings.access_token_lifetime
        granted = [_short_scope(s) for s in scopes if s != "offline_access"]
        access = self._jwt(self._access_claims(client_id, user_id, granted, now, lifetime))
        with self._lock:
            self._access[access] = Grant(
                client_id, user_id, granted, now + timedelta(seconds=lifetime)
            )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(granted),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access,
        }
        if user_id is None:
            return body
        if "offline_access" in scopes:
            refresh = "1.A" + secrets.token_urlsafe(64)
            with self._lock:
                self._refresh[refresh] = Grant(client_id, user_id, scopes)
            body["refresh_token"] = refresh
        if "openid" in scopes:
            body["id_token"] = self._jwt(self._id_claims(client_id, user_id, nonce, now, base))
        utid = self._state.tenant_id
        body["client_info"] = _b64(json.dumps({"uid": user_id, "utid": utid}).encode())
        return body

    def _access_claims(
        self, client_id: str, user_id: str | None, scopes: list[str], now: datetime, lifetime: int
    ) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "aud": "00000003-0000-0000-c000-000000000000",
            "iss": f"https://sts.windows.net/{self._state.tenant_id}/",
            "iat": int(now.timestamp()), "nbf": int(now.timestamp()),
            "exp": int(now.timestamp()) + lifetime, "appid": client_id,
            "tid": self._state.tenant_id, "ver": "1.0", "uti": secrets.token_urlsafe(16),
        }  # fmt: skip
        if user_id is None:
            claims["roles"] = ["Calendars.ReadWrite"]
        else:
            user = self._state.mailbox(user_id).user
            claims.update(oid=user_id, upn=user.upn, name=user.display_name, scp=" ".join(scopes))
        return claims

    def _id_claims(
        self, client_id: str, user_id: str, nonce: str | None, now: datetime, base: str
    ) -> dict[str, Any]:
        user = self._state.mailbox(user_id).user
        claims: dict[str, Any] = {
            "aud": client_id, "iss": f"{base}/{self._state.tenant_id}/v2.0",
            "iat": int(now.timestamp()), "nbf": int(now.timestamp()),
            "exp": int(now.timestamp()) + 3600, "name": user.display_name, "oid": user.id,
            "preferred_username": user.upn, "sub": _b64(hashlib.sha256(user.id.encode()).digest()),
            "tid": self._state.tenant_id, "ver": "2.0",
        }  # fmt: skip
        if nonce:
            claims["nonce"] = nonce
        return claims

    def _jwt(self, claims: dict[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "kid": self._kid}
        signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64(signature)

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        size = (numbers.n.bit_length() + 7) // 8
        return {"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self._kid,
            "n": _b64(numbers.n.to_bytes(size, "big")), "e": _b64(numbers.e.to_bytes(3, "big")),
        }]}  # fmt: skip


def _code_problem(code: _Code | None, app: App, form: dict[str, str], now: datetime) -> str | None:
    if code is None or code.client_id != app.client_id:
        return "bad_code"
    if code.used:
        return "used_code"
    if code.expires <= now:
        return "expired_code"
    if form.get("redirect_uri", "") != code.redirect_uri:
        return "bad_redirect"
    if code.challenge and not _pkce_ok(code, form.get("code_verifier", "")):
        return "bad_verifier"
    return None


def _pkce_ok(code: _Code, verifier: str) -> bool:
    if code.challenge_method == "S256":
        return _b64(hashlib.sha256(verifier.encode()).digest()) == code.challenge
    return verifier == code.challenge


def _redirect_allowed(app: App, redirect: str) -> bool:
    if app.redirect_uris:
        return redirect in app.redirect_uris
    host = urlsplit(redirect).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def _short_scope(scope: str) -> str:
    return scope[len(GRAPH_RESOURCE) :] if scope.startswith(GRAPH_RESOURCE) else scope


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unauthorized(message: str) -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        message,
        headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
    )


def _aad_error(kind: str, *args: str) -> JSONResponse:
    status, error, number, text = _AADSTS[kind]
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%SZ")
    description = (
        f"AADSTS{number}: {text.format(*args)} Trace ID: {trace} "
        f"Correlation ID: {correlation} Timestamp: {stamp}"
    )
    return JSONResponse({
        "error": error, "error_description": description, "error_codes": [number],
        "timestamp": stamp, "trace_id": trace, "correlation_id": correlation,
        "error_uri": f"/error?code={number}",
    }, status)  # fmt: skip


# ---- routes -------------------------------------------------------------------------------------


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def routes(state: GraphState) -> list[Route]:
    identity = state.identity

    async def openid_configuration(request: Request) -> Response:
        tenant, base = request.path_params["tenant"], _base(request)
        return JSONResponse({
            "issuer": f"{base}/{state.tenant_id}/v2.0",
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "oid", "tid",
                                 "preferred_username", "ver"],
            "tenant_region_scope": None, "cloud_instance_name": "microsoftonline.com",
            "msgraph_host": urlsplit(base).netloc,
        })  # fmt: skip

    async def instance_discovery(request: Request) -> Response:
        endpoint = request.query_params.get("authorization_endpoint", "")
        parts = urlsplit(endpoint)
        tenant = (parts.path.strip("/").split("/") or ["common"])[0]
        host = parts.netloc or request.url.netloc
        return JSONResponse({
            "tenant_discovery_endpoint":
                f"https://{host}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        })  # fmt: skip

    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        try:
            redirect, reply = identity.authorize(params)
        except GraphError as err:
            return JSONResponse({"error": err.code, "error_description": err.message}, err.status)
        mode = params.get("response_mode", "query")
        if mode == "form_post":  # the browser would auto-submit this form to the redirect URI
            fields = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
                for k, v in reply.items()
            )
            page = (
                f'<html><body onload="document.forms[0].submit()"><form method="post" '
                f'action="{html.escape(redirect)}">{fields}</form></body></html>'
            )
            return HTMLResponse(page)
        if mode == "fragment":
            return RedirectResponse(f"{redirect}#{urlencode(reply)}", 302)
        return RedirectResponse(
            redirect + ("&" if "?" in redirect else "?") + urlencode(reply), 302
        )

    async def token(request: Request) -> Response:
        # parsed by hand: Starlette's form parser needs python-multipart, which is not a dependency
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        return identity.token(form, _basic_auth(request), _base(request))

    async def keys(request: Request) -> Response:
        return JSONResponse(identity.jwks())

    return [
        Route("/common/discovery/instance", instance_discovery),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration),
        Route("/{tenant}/oauth2/v2.0/authorize", authorize),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        Route("/{tenant}/discovery/v2.0/keys", keys),
    ]


def _basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:]).decode()
    except ValueError:
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret
