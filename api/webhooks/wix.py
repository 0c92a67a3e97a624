"""`POST /webhooks/wix`: Wix's signed webhooks (app installed / removed, session changes).

The body is a JWT; `providers.wix.push.verify_webhook` checks it (RS256 with the app's key,
expiry) and unwraps it. A forged, expired or unsigned body gets 401 and nothing is recorded.
A session change is recorded once per calendar it concerns, under the webhook id, so a
redelivery is a duplicate; a change whose revision calsync already holds is recorded as done.
Wix wants an answer within 1,250 ms: the work happens in the worker.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.webhooks.inbox import enqueue_recorded
from models import INACTIVE, Connection, ExternalCalendar, Link, Tenant, TenantStatus
from models.db import session_scope
from models.notifications import record
from providers.wix.push import InvalidWebhook, WebhookKind, WixWebhook, verify_webhook

router = APIRouter(tags=["webhooks"])
EVENT_CHANGES = (WebhookKind.EVENT_CREATED, WebhookKind.EVENT_UPDATED, WebhookKind.EVENT_CANCELLED)


@router.post(
    "/wix",
    summary="Signed webhooks from Wix",
    responses={401: {"description": "Not a genuine, current webhook of this app"}},
)
async def wix_webhook(request: Request) -> dict[str, Any]:
    body = await request.body()
    return await run_in_threadpool(receive_wix, request.app.state, body)


def receive_wix(state: Any, body: bytes) -> dict[str, Any]:
    try:
        hook = verify_webhook(body, state.settings.wix_public_key)
    except InvalidWebhook as error:
        raise HTTPException(status_code=401, detail=f"webhook refused: {error}") from None
    if hook.kind in (WebhookKind.APP_INSTALLED, WebhookKind.APP_REMOVED):
        return _installation(state, hook)
    if hook.kind in EVENT_CHANGES:
        return _event_change(state, hook)
    return {"ignored": hook.event_type}


def _installation(state: Any, hook: WixWebhook) -> dict[str, Any]:
    installed = hook.kind is WebhookKind.APP_INSTALLED
    with session_scope(state.engine) as db:
        tenant = db.scalar(select(Tenant).where(Tenant.wix_instance_id == hook.instance_id))
        if tenant is None and installed:
            tenant = Tenant(wix_instance_id=hook.instance_id)
            db.add(tenant)
            db.flush()
        if tenant is None:
            return {"ignored": "unknown instance"}
        if record(db, "wix", hook.webhook_id, None, {"kind": hook.kind.value},
                  tenant_id=tenant.id, done=True) is None:  # fmt: skip
            return {"duplicate": True}
        # Removing the app pauses the site's syncs; installing it again resumes them.
        tenant.status = TenantStatus.ACTIVE if installed else TenantStatus.DISABLED
        return {"tenant": tenant.id, "status": tenant.status.value}


def _event_change(state: Any, hook: WixWebhook) -> dict[str, Any]:
    with session_scope(state.engine) as db:
        tenant = db.scalar(select(Tenant).where(Tenant.wix_instance_id == hook.instance_id))
        if tenant is None or tenant.status is not TenantStatus.ACTIVE or not hook.schedule_id:
            return {"ignored": "no active tenant or schedule"}
        calendars = _calendars_of(db, tenant.id, hook.schedule_id)
        stale = _already_applied(db, [c.connection_id for c in calendars], hook)
        payload = {"kind": hook.kind.value, "event": hook.event_id, "revision": hook.revision}
        recorded = []
        for calendar in calendars:
            key = f"{hook.webhook_id}:{calendar.id}"
            item = record(db, "wix", key, calendar.id, payload, tenant.id, done=stale)
            if item is not None:
                recorded.append((item, calendar.id))
    if not stale:
        enqueue_recorded(state, recorded)
    return {"calendars": len(recorded), "stale": stale}


def _calendars_of(db: Session, tenant_id: str, schedule_id: str) -> list[ExternalCalendar]:
    """The synced calendars of the staff member's connections."""
    query = (
        select(ExternalCalendar)
        .join(Connection, Connection.id == ExternalCalendar.connection_id)
        .where(
            Connection.tenant_id == tenant_id,
            Connection.schedule_id == schedule_id,
            Connection.status.not_in(INACTIVE),
            ExternalCalendar.synced,
        )
    )
    return list(db.scalars(query))


def _already_applied(db: Session, connection_ids: list[str], hook: WixWebhook) -> bool:
    """Every link of the event already holds this revision or a newer one."""
    revision = hook.revision_number
    if revision is None or not connection_ids:
        return False
    versions = db.scalars(
        select(Link.wix_version).where(
            Link.connection_id.in_(connection_ids), Link.wix_event_id == hook.event_id
        )
    ).all()
    return bool(versions) and all(_number(v) >= revision for v in versions)


def _number(version: str | None) -> int:
    try:
        return int(version or "")
    except ValueError:
        return -1
