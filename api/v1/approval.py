"""The approval pages of the v1 flow: what the link in the approval email opens.

`/approve/{token}` shows what is asked and a button; `/approve/{token}/start` sends the owner to
Google's consent screen (a fresh signed `state` naming the sync request, so the OAuth callback
marks it approved; `login_hint` pre-selects the account asked); Google's callback ends on
`/approve/done`, which says how it went. When another account signed in, the callback connects
nothing and sends the browser to `/approve/confirm` (`api.v1.binding`): it names both accounts
and asks to confirm the other one (a POST) or to sign in again.
"""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.handover import redis_client
from api.oauth import callback
from api.oauth import state as oauth_state
from api.oauth.flows import callback_url
from api.v1 import binding
from api.v1.system import v1_flow, v1_system
from config import Settings
from models import SyncRequest, SyncRequestStatus
from models.db import session_scope
from models.sync_request import approval_token, request_id_of
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
CONFIRM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PAGE_RESPONSES,
    400: {"description": "Not a confirmation calsync issued", **_HTML},
    404: {"description": "The confirmation is used or expired, or the request withdrawn", **_HTML},
}
POST_RESPONSES: dict[int | str, dict[str, Any]] = {
    303: {"description": "To /approve/done"},
    **CONFIRM_RESPONSES,
    403: {"description": "Posted from another site", **_HTML},
}
MAX_FORM_BYTES = 4096
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


async def ticket_field(request: Request) -> str:
    """The `ticket` of the confirmation form (urlencoded, small)."""
    body = await request.body()
    fields = dict(parse_qsl(body[:MAX_FORM_BYTES].decode("utf-8", "replace")))
    return fields.get("ticket", "")


@router.get("/confirm", summary="Confirm another account", response_class=HTMLResponse,
            responses=CONFIRM_RESPONSES)  # fmt: skip
def confirm_page(
    ticket: Annotated[str, Query(min_length=1, max_length=binding.MAX_TICKET_LENGTH)],
    request: Request,
) -> HTMLResponse:
    """Where the OAuth callback sends someone who signed in to another account than asked."""
    settings: Settings = request.app.state.settings
    found = _held(request, ticket, spend=False)
    if isinstance(found, HTMLResponse):
        return found
    held, pending = found
    asked, other = pending.email, held.signed_in.email
    base = str(settings.public_base_url).rstrip("/")
    again = f"{base}/approve/{approval_token(settings, pending.id)}/start"
    form = (
        f'<form method="post" action="{html.escape(base)}/approve/confirm">'
        f'<input type="hidden" name="ticket" value="{html.escape(ticket)}">'
        f'<button id="confirm" type="submit">Connect {html.escape(other)}</button></form>'
        f'<p><a id="sign-in-again" href="{html.escape(again)}">Sign in again as '
        f"{html.escape(asked)}</a></p>"
    )
    answer = page(
        "Connect a different account?",
        f"This request was sent to {asked}, but you signed in as {other}. Nothing is connected "
        f"yet. Connect the Google Calendar of {other} to the booking calendar instead, or sign "
        f"in again with {asked}.",
        extra=form,
    )
    answer.headers["Referrer-Policy"] = "no-referrer"  # the ticket is in this page's address
    return answer


@router.post(
    "/confirm",
    summary="Confirm another account (the form's POST)",
    description="Connects the account that signed in, which is not the one the request was "
    "sent to, once its owner confirmed. The form's `ticket` works once.",
    response_class=RedirectResponse,
    status_code=303,
    responses=POST_RESPONSES,
)
def confirm(request: Request, ticket: Annotated[str, Depends(ticket_field)]) -> Response:
    settings: Settings = request.app.state.settings
    if not _same_origin(request, settings):
        return page("Not connected", "This form was posted from another site.", status=403)
    found = _held(request, ticket, spend=True)
    if isinstance(found, HTMLResponse):
        return found
    held, pending = found
    approval = callback.Approval(pending.id, confirmed=True)
    done_url = f"{str(settings.public_base_url).rstrip('/')}/approve/done"
    try:
        connection_id = callback.connect_signed_in(
            request, pending.tenant_id, pending.resource_id, v1_system(settings), held.signed_in,
            approval,
        )  # fmt: skip
    except callback.Outcome as outcome:
        return callback.back_to(done_url, {"error": outcome.error}, status=303)
    return callback.back_to(done_url, {"connectionId": connection_id}, status=303)


def _held(request: Request, ticket: str, spend: bool
          ) -> tuple[binding.Held, SyncRequest] | HTMLResponse:  # fmt: skip
    """The sign-in a ticket holds (spent, for the confirmation) and its pending request, or the
    page that says why there is none."""
    settings, client = request.app.state.settings, redis_client(request.app.state)
    try:
        held = (binding.take if spend else binding.peek)(settings, client, ticket)
    except binding.TicketRefused as refused:
        return page("Not connected", str(refused), status=refused.status)
    pending = _pending_request(request, held.request_id)
    return gone() if pending is None else (held, pending)


def _same_origin(request: Request, settings: Settings) -> bool:
    """A browser's `Origin`, when sent, must be calsync's own address."""
    origin = request.headers.get("origin")
    own = {urlsplit(str(settings.public_base_url)).netloc, request.headers.get("host", "")}
    return origin is None or urlsplit(origin).netloc in own


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
    hint = urlencode({"login_hint": pending.email})  # the account asked, pre-selected
    return RedirectResponse(f"{url}{'&' if '?' in url else '?'}{hint}", status_code=302)


def _pending(request: Request, token: str) -> SyncRequest | None:
    request_id = request_id_of(request.app.state.settings, token)
    return None if request_id is None else _pending_request(request, request_id)


def _pending_request(request: Request, request_id: str) -> SyncRequest | None:
    with session_scope(request.app.state.engine) as db:
        found = db.get(SyncRequest, request_id)
        live = found is not None and found.status is SyncRequestStatus.PENDING
        return found if live and found is not None and found.expires_at > utcnow() else None


def gone() -> HTMLResponse:
    message = "This approval link is not valid any more (used, withdrawn or expired)."
    return page("Link not valid", message, status=404)


def page(title: str, message: str, link: tuple[str, str] | None = None, status: int = 200,
         extra: str = "") -> HTMLResponse:  # fmt: skip
    """A short page; `extra` is markup already escaped."""
    button = ""
    if link is not None:
        button = f'<p><a id="approve" href="{html.escape(link[0])}">{html.escape(link[1])}</a></p>'
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{button}"
        f"{extra}</body></html>"
    )
    return HTMLResponse(body, status_code=status)
