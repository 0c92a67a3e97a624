"""`GET /oauth/{system}/callback`: where a calendar system that connects by OAuth (Google,
Microsoft) sends the user back.

The `state` is checked and spent first; a state calsync did not make (or made for another
provider, or expired, or used already) gets a plain error page, never a redirect, since its
redirect URL cannot be trusted. With a good state the user always goes back to the caller's
`redirectUrl`, as Wix does: with `connectionId=...` once the code was exchanged, the tokens
stored (encrypted) and the connection made (its first sync enqueued after the commit), or with
`error=reject` (the user said no), `error=unsupported` (the account cannot be connected) or
`error=internal`. In the v1 flow, an account other than the one the request was sent to
connects nothing yet: the user goes to `/approve/confirm` instead (`api.v1.binding`).
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api.auth import Caller
from api.errors import ApiError
from api.external_calendars.connect import Made, NewAccount, connect
from api.external_calendars.connections import after_connect
from api.handover import redis_client
from api.oauth import state as oauth_state
from api.oauth.flows import callback_url, flow_for
from api.v1 import binding
from config import Settings
from models import PRIMARY_PLACEHOLDER, SyncRequest, SyncRequestStatus, Tenant, TenantStatus
from models.db import session_scope
from models.types import utcnow
from providers.base import CalendarInfo
from providers.errors import PermanentError, PermanentReason, ProviderError
from providers.oauth import SignedIn

router = APIRouter(tags=["oauth"])
log = logging.getLogger(__name__)
# What the provider's `error` parameter means for the caller.
REJECTED = {"access_denied", "consent_required", "interaction_required", "user_cancelled"}
UNSUPPORTED = {"unauthorized_client", "unsupported_response_type", "invalid_scope"}


class Outcome(Exception):
    """Send the user back to the caller with this `error` value."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@router.get(
    "/oauth/{system}/callback",
    summary="OAuth callback",
    description="The provider redirects the user here after the consent screen. Answers a "
    "redirect to the `redirectUrl` given to Connect By OAuth, with `connectionId` or `error`.",
    response_class=RedirectResponse,
    status_code=302,
    responses={
        302: {
            "description": "Back to the caller's redirectUrl (v1, another account than "
            "asked: to /approve/confirm)"
        },
        400: {
            "description": "Not a valid sign-in (bad, expired or used state)",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
    },
)
def oauth_callback(
    system: Annotated[str, Path(max_length=40)],
    request: Request,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    settings: Settings = request.app.state.settings
    try:
        checked = oauth_state.verify_state(settings, state or "", system)
        oauth_state.consume(redis_client(request.app.state), settings.broker_key_prefix, checked)
    except oauth_state.StateRefused as refused:
        return refusal_page(str(refused))
    try:
        connection_id = _complete(request, settings, checked, system, code, error)
    except Outcome as outcome:
        return back_to(checked.redirect_url, {"error": outcome.error})
    except binding.OtherAccount as other:  # v1: not the account the request was sent to
        return RedirectResponse(other.confirm_url, status_code=302)
    return back_to(checked.redirect_url, {"connectionId": connection_id})


def _complete(request: Request, settings: Settings, checked: oauth_state.OAuthState,
              system: str, code: str | None, error: str | None) -> str:  # fmt: skip
    if error or not code:
        raise Outcome("reject" if error in REJECTED else
                      "unsupported" if error in UNSUPPORTED else "internal")  # fmt: skip
    signed_in = _exchange(settings, system, code)
    approval = None
    if checked.sync_request_id is not None:
        binding.bind(request, checked.sync_request_id, signed_in)
        approval = Approval(checked.sync_request_id, confirmed=False)
    return connect_signed_in(request, checked.tenant_id, checked.schedule_id, system, signed_in,
                             approval)  # fmt: skip


@dataclass(frozen=True)
class Approval:
    """The v1 sync request a connection approves; `confirmed`: its approver confirmed an
    account other than the one it was sent to."""

    request_id: str
    confirmed: bool


def connect_signed_in(request: Request, tenant_id: str, schedule_id: str, system: str,
                      signed_in: SignedIn, approval: Approval | None) -> str:  # fmt: skip
    """Connect the account signed in to the schedule; returns the connection's id."""
    settings: Settings = request.app.state.settings
    # Without a primary calendar yet, a worker learns it before the first sync.
    primary = signed_in.primary or CalendarInfo(PRIMARY_PLACEHOLDER, "Calendar", primary=True)
    try:
        with session_scope(request.app.state.engine) as db:
            caller = _caller(db, tenant_id)
            account = NewAccount(system, signed_in.email, dict(signed_in.credentials), [primary],
                                 signed_in.expires_at)  # fmt: skip
            made = connect(db, caller, schedule_id, account, settings)
            if approval is not None:
                _approved(db, approval, made)
            connection_id = made.connection.id
    except ApiError as refused:  # connected meanwhile, not the tenant's schedule, withdrawn
        log.info("OAuth connect refused: %s", refused.message)
        raise Outcome("internal") from None
    after_connect(request, made)
    return connection_id


def _exchange(settings: Settings, system: str, code: str) -> SignedIn:
    flow = flow_for(settings, system)
    if flow is None:  # a state was made for it, so the system was there then
        raise Outcome("unsupported")
    try:
        return flow.exchange(settings, code, callback_url(settings, system))
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


def _approved(db: Session, approval: Approval, made: Made) -> None:
    """The v1 sync request is approved, by the account connected; one the business withdrew
    meanwhile (or replaced) makes no connection: the transaction is rolled back."""
    sync_request = db.get(SyncRequest, approval.request_id, with_for_update=True)
    if sync_request is None or sync_request.status is not SyncRequestStatus.PENDING:
        raise ApiError(409, "the sync request was withdrawn")
    sync_request.status = SyncRequestStatus.APPROVED
    sync_request.connection_id = made.connection.id
    sync_request.approved_by = made.connection.external_account_email
    sync_request.confirmed_at = utcnow() if approval.confirmed else None


def back_to(redirect_url: str, params: dict[str, str], status: int = 302) -> RedirectResponse:
    separator = "&" if "?" in redirect_url else "?"
    return RedirectResponse(redirect_url + separator + urlencode(params), status_code=status)


def refusal_page(message: str) -> HTMLResponse:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Not connected</title></head>"
        f"<body><h1>Not connected</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=400)
