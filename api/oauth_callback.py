"""`GET /oauth/{provider}/callback`: where Google or Microsoft sends the user back.

The `state` is checked and spent first; a state calsync did not make (or made for another
provider, or expired, or used already) gets a plain error page, never a redirect, since its
redirect URL cannot be trusted. With a good state the user always goes back to the caller's
`redirectUrl`, as Wix does: with `connectionId=...` once the code was exchanged, the tokens
stored (encrypted) and the connection made (its first sync enqueued after the commit), or with
`error=reject` (the user said no), `error=unsupported` (the account cannot be connected) or
`error=internal`.
"""

from __future__ import annotations

import html
import logging
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api import oauth_state
from api.auth import Caller
from api.errors import ApiError
from api.external_calendars_common import work_context
from api.external_calendars_connections import after_connect
from api.external_calendars_setup import Made, NewAccount, connect
from api.oauth_providers import FLOWS, SignedIn, callback_url
from config import Settings
from models import Provider, SyncRequest, SyncRequestStatus, Tenant, TenantStatus
from models.db import session_scope
from providers.base import PermanentError, PermanentReason, ProviderError

router = APIRouter(tags=["oauth"])
log = logging.getLogger(__name__)
# What the provider's `error` parameter means for the caller.
REJECTED = {"access_denied", "consent_required", "interaction_required", "user_cancelled"}
UNSUPPORTED = {"unauthorized_client", "unsupported_response_type", "invalid_scope"}


class OAuthProviderName(StrEnum):
    GOOGLE = "google"
    MICROSOFT = "microsoft"


class Outcome(Exception):
    """Send the user back to the caller with this `error` value."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@router.get(
    "/oauth/{provider}/callback",
    summary="OAuth callback",
    description="The provider redirects the user here after the consent screen. Answers a "
    "redirect to the `redirectUrl` given to Connect By OAuth, with `connectionId` or `error`.",
    response_class=RedirectResponse,
    status_code=302,
    responses={
        302: {"description": "Back to the caller's redirectUrl"},
        400: {
            "description": "Not a valid sign-in (bad, expired or used state)",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
    },
)
def oauth_callback(
    provider: OAuthProviderName,
    request: Request,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    settings: Settings = request.app.state.settings
    context = work_context(request)
    try:
        checked = oauth_state.verify_state(settings, state or "", provider.value)
        oauth_state.consume(context.redis, settings.broker_key_prefix, checked)
    except oauth_state.StateRefused as refused:
        return refusal_page(str(refused))
    try:
        connection_id = _complete(request, settings, checked, Provider(provider.value), code,
                                  error)  # fmt: skip
    except Outcome as outcome:
        return back_to(checked.redirect_url, {"error": outcome.error})
    return back_to(checked.redirect_url, {"connectionId": connection_id})


def _complete(request: Request, settings: Settings, checked: oauth_state.OAuthState,
              provider: Provider, code: str | None, error: str | None) -> str:  # fmt: skip
    if error or not code:
        raise Outcome("reject" if error in REJECTED else
                      "unsupported" if error in UNSUPPORTED else "internal")  # fmt: skip
    signed_in = _exchange(settings, provider, code)
    try:
        with session_scope(request.app.state.engine) as db:
            caller = _caller(db, checked.tenant_id)
            account = NewAccount(provider, signed_in.email, signed_in.credentials,
                                 [signed_in.primary], signed_in.expires_at)  # fmt: skip
            made = connect(db, caller, checked.schedule_id, account, settings)
            if checked.sync_request_id is not None:
                _approved(db, checked.sync_request_id, made)
            connection_id = made.connection.id
    except ApiError as refused:  # connected meanwhile, not the tenant's schedule, withdrawn
        log.info("OAuth connect refused: %s", refused.message)
        raise Outcome("internal") from None
    after_connect(request, made)
    return connection_id


def _exchange(settings: Settings, provider: Provider, code: str) -> SignedIn:
    try:
        return FLOWS[provider].exchange(settings, code, callback_url(settings, provider))
    except PermanentError as refused:
        # The calendar scope left unticked on the consent screen is a refusal by the user.
        raise Outcome(
            "reject" if refused.reason is PermanentReason.FORBIDDEN else "internal"
        ) from None
    except ProviderError as failure:
        log.warning("OAuth code exchange failed: %s", type(failure).__name__)
        raise Outcome("internal") from None


def _caller(db: Session, tenant_id: str) -> Caller:
    tenant = db.get(Tenant, tenant_id)
    if tenant is None or tenant.status is not TenantStatus.ACTIVE:
        raise ApiError(403, "the tenant is gone or disabled")
    return Caller(tenant.id, tenant.wix_instance_id)


def _approved(db: Session, request_id: str, made: Made) -> None:
    """The v1 sync request is approved; one the business withdrew meanwhile (or replaced)
    makes no connection: the transaction is rolled back."""
    sync_request = db.get(SyncRequest, request_id, with_for_update=True)
    if sync_request is None or sync_request.status is not SyncRequestStatus.PENDING:
        raise ApiError(409, "the sync request was withdrawn")
    sync_request.status = SyncRequestStatus.APPROVED
    sync_request.connection_id = made.connection.id


def back_to(redirect_url: str, params: dict[str, str]) -> RedirectResponse:
    separator = "&" if "?" in redirect_url else "?"
    return RedirectResponse(redirect_url + separator + urlencode(params), status_code=302)


def refusal_page(message: str) -> HTMLResponse:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Not connected</title></head>"
        f"<body><h1>Not connected</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=400)
