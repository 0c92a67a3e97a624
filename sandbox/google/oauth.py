"""Google's OAuth 2.0 endpoints: consent (authorization code), token, revocation, userinfo.

The consent screen decides at once: it approves for the configured test user (or the first account),
or denies when told to (`sandbox_decision=deny` on the consent URL, or `state.consent_decision`).
`login_hint` picks the account when it names a known one, as it pre-selects one at Google.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .api import sandbox_state
from .channels import is_loopback_url
from .grants import ISSUER, Grant, OAuthClient, OAuthError, subject
from .state import GoogleState

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def authorize(request: Request) -> Response:
    state = sandbox_state(request)
    params = request.query_params
    with state.lock:
        client = state.grants.clients.get(params.get("client_id", ""))
    if client is None:
        return _error_page(401, "invalid_client", "The OAuth client was not found.")
    redirect_uri = params.get("redirect_uri", "")
    if not _redirect_allowed(client, redirect_uri):
        return _error_page(400, "redirect_uri_mismatch", f"redirect_uri: {redirect_uri}")
    if not params.get("scope"):
        return _error_page(400, "invalid_request", "Missing required parameter: scope")
    back = {"state": params["state"]} if "state" in params else {}
    if params.get("response_type") != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", **back})
    if (params.get("sandbox_decision") or state.consent_decision) == "deny":
        return _redirect(redirect_uri, {"error": "access_denied", **back})
    email = _consenting_user(state, params.get("sandbox_user") or params.get("login_hint"))
    if email is None:
        return _error_page(400, "invalid_request", "The sandbox has no account to sign in with.")
    code = _issue_code(state, client, redirect_uri, email, dict(params))
    return _redirect(redirect_uri, {"code": code, "scope": params["scope"], **back})


async def token(request: Request) -> Response:
    state = sandbox_state(request)
    form = await _form(request)
    try:
        fault = state.faults.request_fault("token", "POST", request.url.path, "", state.clock.now())
        if fault is not None:
            return JSONResponse(fault.oauth_body(), status_code=fault.status)
        return JSONResponse(_grant_tokens(state, request, form), headers=_NO_STORE)
    except OAuthError as exc:
        body = {"error": exc.error, "error_description": exc.description}
        return JSONResponse(body, status_code=exc.status, headers=_NO_STORE)


async def revoke(request: Request) -> Response:
    state = sandbox_state(request)
    form = await _form(request)
    value = form.get("token") or request.query_params.get("token") or ""
    with state.lock:
        revoked = state.grants.revoke_token(value)
    if not revoked:
        body = {"error": "invalid_token", "error_description": "Token expired or revoked"}
        return JSONResponse(body, status_code=400)
    return JSONResponse({})


async def userinfo(request: Request) -> Response:
    state = sandbox_state(request)
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    with state.lock:
        caller = state.grants.caller(value.strip(), state.clock.now())
        account = state.directory.accounts.get(caller.email) if caller else None
    if scheme.lower() != "bearer" or caller is None or account is None:
        body = {"error": "invalid_request", "error_description": "Invalid Credentials"}
        return JSONResponse(body, status_code=401)
    return JSONResponse(
        {
            "sub": subject(account.email),
            "email": account.email,
            "email_verified": True,
            "name": account.name,
        }
    )


async def openid_configuration(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "issuer": ISSUER,
            "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/v1/userinfo",
            "revocation_endpoint": f"{base}/revoke",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "scopes_supported": ["openid", "email", "profile"],
        }
    )


def _grant_tokens(state: GoogleState, request: Request, form: dict[str, str]) -> dict[str, Any]:
    client_id, secret = _client_credentials(request, form)
    grant_type = form.get("grant_type")
    with state.lock:
        now = state.clock.now()
        client = state.grants.authenticate_client(client_id, secret)
        if grant_type == "authorization_code":
            code = state.grants.exchange_code(
                client,
                form.get("code", ""),
                form.get("redirect_uri"),
                form.get("code_verifier"),
                now,
            )
            grant: Grant = state.grants.start_grant(client.client_id, code.email, code.scope)
            fresh_refresh_token = code.issue_refresh_token
        elif grant_type == "refresh_token":
            grant = state.grants.grant_for_refresh(client, form.get("refresh_token", ""))
            fresh_refresh_token = False  # Google keeps the refresh token you have
        else:
            raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        return state.grants.token_response(
            grant, client, now, state.options.access_token_ttl, fresh_refresh_token
        )


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    """client_secret_post or client_secret_basic."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            raise OAuthError(401, "invalid_client", "Unauthorized") from None
        return unquote(user), unquote(password)
    return form.get("client_id"), form.get("client_secret")


def _issue_code(
    state: GoogleState, client: OAuthClient, redirect_uri: str, email: str, params: dict[str, str]
) -> str:
    challenge = params.get("code_challenge")
    with state.lock:
        return state.grants.issue_code(
            client.client_id,
            redirect_uri,
            email,
            params["scope"],
            offline=params.get("access_type") == "offline",
            force_consent="consent" in params.get("prompt", "").split(),
            challenge=(challenge, params.get("code_challenge_method", "plain"))
            if challenge
            else None,
            expires_at=state.clock.now() + timedelta(seconds=state.options.auth_code_ttl),
        )


def _consenting_user(state: GoogleState, hint: str | None) -> str | None:
    with state.lock:
        accounts = state.directory.accounts
        if hint and hint in accounts:
            return hint
        if state.consent_user in accounts:
            return state.consent_user
        return next(iter(accounts), None)


def _redirect_allowed(client: OAuthClient, redirect_uri: str) -> bool:
    if client.redirect_uris:
        return redirect_uri in client.redirect_uris
    return is_loopback_url(redirect_uri)


def _redirect(redirect_uri: str, params: dict[str, str]) -> Response:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params), status_code=302)


def _error_page(status: int, error: str, detail: str) -> Response:
    return PlainTextResponse(f"Error {status}: {error}\n{detail}\n", status_code=status)


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (what OAuth clients send)."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(raw, keep_blank_values=True))


routes = [
    Route("/o/oauth2/v2/auth", authorize, methods=["GET"]),
    Route("/o/oauth2/auth", authorize, methods=["GET"]),
    Route("/token", token, methods=["POST"]),
    Route("/o/oauth2/token", token, methods=["POST"]),
    Route("/revoke", revoke, methods=["GET", "POST"]),
    Route("/oauth2/v3/userinfo", userinfo, methods=["GET"]),
    Route("/v1/userinfo", userinfo, methods=["GET"]),
    Route("/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
]
