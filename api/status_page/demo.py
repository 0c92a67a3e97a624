"""The demo world's panel on its business's status page: each staff member's Wix schedule and
own calendar side by side, and buttons that make the demo's people change them (book, move and
cancel a session in Wix; add or delete an event in Google, Outlook or CalDAV; edit one session
on both sides at once, for a conflict). Shown only while `CALSYNC_DEMO_CONTROL_URL` is set, and
only on the demo's own business."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from api.errors import ApiError
from api.status_page.access import Operator, check_form, form_token
from api.status_page.panels import Panel, PanelView
from api.status_page.rendering import environment
from api.status_page.router import Form
from models import Tenant
from models.db import session_scope

SYSTEM_NAMES = {"google": "Google Calendar", "outlook": "Outlook", "caldav": "CalDAV"}
# What each button asks of the demo's control: path (with the form's fields) and body.
ACTIONS = {
    "book": lambda f: ("/sessions", {"staff": f.get("staff")}),
    "move": lambda f: (f"/sessions/{f.get('id', '')}/move", {}),
    "cancel": lambda f: (f"/sessions/{f.get('id', '')}/cancel", {}),
    "busy": lambda f: ("/busy", {"system": f.get("system")}),
    "delete": lambda f: (f"/busy/{f.get('system', '')}/{f.get('id', '')}/delete", {}),
    "conflict": lambda f: ("/conflicts", {"staff": f.get("staff")}),
}
templates = environment()
router = APIRouter()


def render(view: PanelView) -> Markup | None:
    control = view.settings.demo_control_url
    if not control:
        return None
    with session_scope(view.engine) as db:
        tenant = db.get(Tenant, view.tenant_id)
        instance_id = tenant.wix_instance_id if tenant else None
    try:
        state = httpx.get(f"{control}/state", timeout=3, trust_env=False).json()
    except (httpx.HTTPError, ValueError):
        return Markup('<h2 id="demo">Demo world</h2><p class="error">The demo world does not '
                      "answer; <code>calsync up</code> restarts it.</p>")  # fmt: skip
    if state.get("instanceId") != instance_id:
        return None
    return Markup(templates.get_template("demo.html").render(
        staff=[_columns(each) for each in state["staff"]], view=view))  # fmt: skip


def fragment(request: Request, credential: Operator, tenant_id: str) -> HTMLResponse:
    """The panel alone, which the page fetches every few seconds to show changes arriving."""
    view = PanelView(tenant_id, request.app.state.settings, request.app.state.engine,
                     form_token(credential), "/status/panels/demo")  # fmt: skip
    return HTMLResponse(render(view) or "")


def act(request: Request, credential: Operator, tenant_id: str, action: str,
        fields: Form) -> RedirectResponse:  # fmt: skip
    check_form(request, credential, fields)
    if action not in ACTIONS:
        raise ApiError(404, f"action: no demo action {action}", field="action")
    path, body = ACTIONS[action](fields)
    control = request.app.state.settings.demo_control_url
    try:
        answer = httpx.post(f"{control}{path}", json=body, timeout=10, trust_env=False)
    except httpx.HTTPError:
        raise ApiError(503, "the demo world does not answer", field="action") from None
    if answer.is_error:  # the control's refusal, or its own failure (not this page's)
        status = 400 if answer.status_code < 500 else 502
        raise ApiError(status, f"the demo world refused: {_said(answer)}", field="action")
    return RedirectResponse(f"/status/tenants/{tenant_id}?notice=demo#demo", status_code=303)


router.add_api_route("/{tenant_id}/fragment", fragment, methods=["GET"])
router.add_api_route("/{tenant_id}/{action}", act, methods=["POST"])
PANEL = Panel("demo", render, router=router)


def _said(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    return str(body.get("error", "") if isinstance(body, dict) else body)[:200]


def _columns(staff: dict[str, Any]) -> dict[str, Any]:
    return {**staff, "calendar_name": SYSTEM_NAMES.get(staff["system"], staff["system"]),
            "wix": [_shown(e) for e in staff["wix"]], "own": [_shown(e) for e in staff["own"]]}


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    start, end = datetime.fromisoformat(entry["start"]), datetime.fromisoformat(entry["end"])
    return {**entry, "when": f"{start:%a %d %b %H:%M}-{end:%H:%M} UTC"}
