"""`/status`: the businesses and their health; `/status/tenants/{id}`: one business in full,
with forms to retry a dead letter and to resolve a conflict. The forms do what the External
Calendars API does (`api/external_calendars/dead_letters.py`, `conflicts.py`), then send the
browser back to the page (303) with a short notice."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from markupsafe import Markup

from api.auth import Caller
from api.errors import ApiError, not_found
from api.external_calendars.conflicts import outcome, tenant_conflict
from api.external_calendars.dead_letters import tenant_letter
from api.external_calendars.schema import ID_MAX, KeepChoice
from api.handover import sync_now
from api.status_page.access import Operator, check_form, form_token, operator
from api.status_page.panels import PanelView, registered, route_base
from api.status_page.queries import tenant_lines, tenant_page
from api.status_page.rendering import environment
from models import ConflictStatus, Tenant
from models.db import session_scope
from tasks.enqueue import request_conflict_resolution

STATIC, STATIC_DIR = {"style.css": "text/css"}, FilePath(__file__).parent / "static"
MAX_FORM_BYTES = 4096
NOTICES = {
    "retried": "The change is released: a sync of its calendar will try it again now.",
    "acknowledged": "The conflict is closed; the winning value stays.",
    "resolving": "A worker is writing the kept value to both sides.",
    "resolved": "The kept value is the agreed one already.",
    "CONFLICT_CLOSED": "That conflict was closed already.",
    "NOT_REVERSIBLE": "Only the winner can be kept: the events were deleted.",
    "queue-down": "Saved, but the work queue is unreachable: press the button again soon.",
    "demo": "Done in the demo world; calsync syncs it, and the other side follows in seconds.",
}
TenantId = Annotated[str, Path(alias="tenantId", min_length=1, max_length=ID_MAX)]
RecordId = Annotated[str, Path(min_length=1, max_length=ID_MAX)]
templates = environment()


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the page's forms are small)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, "the form is too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


Form = Annotated[dict[str, str], Depends(form_fields)]


def status_router() -> APIRouter:
    """The page's routes, and those of the panels registered so far (`panels.py`)."""
    router = APIRouter(prefix="/status", include_in_schema=False)
    router.add_api_route("", overview, methods=["GET"])
    router.add_api_route("/tenants/{tenantId}", business, methods=["GET"])
    router.add_api_route("/tenants/{tenantId}/dead-letters/{letter_id}/retry", retry,
                         methods=["POST"])  # fmt: skip
    router.add_api_route("/tenants/{tenantId}/conflicts/{conflict_id}/resolve", resolve,
                         methods=["POST"])  # fmt: skip
    router.add_api_route("/static/{name}", static, methods=["GET"])
    for panel in registered():
        if panel.router is not None:
            router.include_router(panel.router, prefix=route_base(panel).removeprefix("/status"),
                                  dependencies=[Depends(operator)])  # fmt: skip
    return router


def overview(request: Request, credential: Operator) -> HTMLResponse:
    with session_scope(request.app.state.engine) as db:
        body = templates.get_template("index.html").render(tenants=tenant_lines(db))
    return HTMLResponse(body)


def business(request: Request, credential: Operator, tenant_id: TenantId,
             notice: str | None = None) -> HTMLResponse:  # fmt: skip
    settings = request.app.state.settings
    csrf = form_token(credential)
    with session_scope(request.app.state.engine) as db:
        tenant = db.get(Tenant, tenant_id)
        if tenant is None:
            raise not_found("tenantId", "business")
        page = tenant_page(db, settings, tenant)
        view = PanelView(tenant_id, settings, request.app.state.engine, csrf, "")
        body = templates.get_template("tenant.html").render(
            page=page, csrf=csrf, notice=NOTICES.get(notice or ""), panels=_panels(view))
    return HTMLResponse(body)


def _panels(view: PanelView) -> list[Markup]:
    drawn = []
    for panel in registered():
        shown = panel.render(PanelView(**{**view.__dict__, "route_base": route_base(panel)}))
        if shown is not None:
            drawn.append(shown)
    return drawn


def retry(request: Request, credential: Operator, tenant_id: TenantId, letter_id: RecordId,
          fields: Form) -> RedirectResponse:  # fmt: skip
    check_form(request, credential, fields)
    with session_scope(request.app.state.engine) as db:
        letter = tenant_letter(db, Caller(tenant_id, ""), letter_id, lock=True)
        letter.release(request.app.state.settings.dead_letter_after)
        calendar_id = letter.calendar_id
    sent = sync_now(request, [calendar_id], "retry")
    return back(tenant_id, "retried" if sent else "queue-down", "dead-letters")


def resolve(request: Request, credential: Operator, tenant_id: TenantId, conflict_id: RecordId,
            fields: Form) -> RedirectResponse:  # fmt: skip
    check_form(request, credential, fields)
    try:
        keep = KeepChoice(fields.get("keep", ""))
    except ValueError:
        raise ApiError(400, "must be WINNER, WIX or EXTERNAL", field="keep") from None
    try:
        with session_scope(request.app.state.engine) as db:
            row = tenant_conflict(db, Caller(tenant_id, ""), conflict_id, lock=True)
            row.status = wanted = outcome(row, keep)
    except ApiError as refused:
        if refused.status != 409:
            raise
        return back(tenant_id, refused.code, "conflicts")
    if wanted is ConflictStatus.RESOLVING and not request_conflict_resolution(conflict_id):
        return back(tenant_id, "queue-down", "conflicts")
    return back(tenant_id, wanted.value.lower(), "conflicts")


def back(tenant_id: str, notice: str, section: str) -> RedirectResponse:
    return RedirectResponse(f"/status/tenants/{tenant_id}?notice={notice}#{section}",
                            status_code=303)  # fmt: skip


def static(name: str, credential: Operator) -> FileResponse:
    if name not in STATIC:
        raise ApiError(404, "Not Found")
    return FileResponse(STATIC_DIR / name, media_type=STATIC[name])
