"""The approval pages of the v1 flow: what the link in the approval email opens.

`/approve/{token}` shows what is asked and a button; `/approve/{token}/start` sends the owner to
Google's consent screen (a fresh signed `state` naming the sync request, so the OAuth callback
marks it approved); Google's callback ends on `/approve/done`, which says how it went.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.oauth import state as oauth_state
from api.oauth.flows import callback_url
from api.v1.system import v1_flow, v1_system
from config import Settings
from models import SyncRequest, SyncRequestStatus
from models.db import session_scope
from models.sync_request import request_id_of
from models.types import utcnow
from providers.errors import TransientError

router = APIRouter(prefix="/approve", tags=["approval (v1 flow)"])
Token = Annotated[str, Path(min_length=1, max_length=200)]
_HTML: dict[str, Any] = {
    "content": {"text/html": {"schema": {"type": "string"}}},
}
PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The page", **_HTML},
    404: {"description": "The link is unknown, used or expired", **_HTML},
}
MESSAGES = {
    "reject": "You declined, so nothing was connected. You can use the link again.",
    "unsupported": "This Google account cannot be connected.",
    "internal": "Something went wrong on our side. Please try the link again later.",
}


@router.get("/done", summary="Approval finished", response_class=HTMLResponse,
            responses=PAGE_RESPONSES)  # fmt: skip
def done(
    connection_id: Annotated[str | None, Query(alias="connectionId", max_length=64)] = None,
    error: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    if connection_id and not error:
        return page("Calendar connected",
                    "Your Google Calendar is now synced with the booking calendar.")  # fmt: skip
    return page("Not connected", MESSAGES.get(error or "", MESSAGES["internal"]))


@router.get("/{token}", summary="Approval page", response_class=HTMLResponse,
            responses=PAGE_RESPONSES)  # fmt: skip
def approval_page(token: Token, request: Request) -> HTMLResponse:
    pending = _pending(request, token)
    if pending is None:
        return gone()
    start = f"{str(request.app.state.settings.public_base_url).rstrip('/')}/approve/{token}/start"
    return page(
        "Sync your Google Calendar?",
        f"{pending.email} was asked to sync their Google Calendar with a booking calendar: "
        "bookings will appear in it, and your own events will block booking times.",
        link=(start, "Approve and sign in with Google"),
    )


@router.get(
    "/{token}/start",
    summary="Start approving (to Google's consent screen)",
    response_class=RedirectResponse,
    status_code=302,
    responses={302: {"description": "To Google's consent screen"}, **PAGE_RESPONSES},
)
def start(token: Token, request: Request) -> Response:
    pending = _pending(request, token)
    settings: Settings = request.app.state.settings
    flow, system = v1_flow(settings), v1_system(settings)
    if pending is None or flow is None or not flow.configured(settings):
        return gone()
    state = oauth_state.issue(
        settings, tenant_id=pending.tenant_id, schedule_id=pending.resource_id,
        provider=system, sync_request_id=pending.id,
        redirect_url=f"{str(settings.public_base_url).rstrip('/')}/approve/done",
    )  # fmt: skip
    try:
        url = flow.consent_url(settings, callback_url(settings, system), state)
    except TransientError:
        return page("Please try again", MESSAGES["internal"])
    return RedirectResponse(url, status_code=302)


def _pending(request: Request, token: str) -> SyncRequest | None:
    request_id = request_id_of(request.app.state.settings, token)
    if request_id is None:
        return None
    with session_scope(request.app.state.engine) as db:
        found = db.get(SyncRequest, request_id)
        live = found is not None and found.status is SyncRequestStatus.PENDING
        return found if live and found is not None and found.expires_at > utcnow() else None


def gone() -> HTMLResponse:
    message = "This approval link is not valid any more (used, withdrawn or expired)."
    return page("Link not valid", message, status=404)


def page(title: str, message: str, link: tuple[str, str] | None = None, status: int = 200
         ) -> HTMLResponse:  # fmt: skip
    button = ""
    if link is not None:
        button = f'<p><a id="approve" href="{html.escape(link[0])}">{html.escape(link[1])}</a></p>'
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{button}"
        "</body></html>"
    )
    return HTMLResponse(body, status_code=status)
