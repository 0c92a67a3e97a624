"""Provider webhooks under /webhooks: the local store's here, each provider's in its module.

Each receiver verifies, records in the inbox under an idempotency key, commits, and enqueues
(`api.inbox`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api import google_webhooks, microsoft_webhooks, wix_webhooks
from api.inbox import enqueue_recorded
from models import ChannelStatus, Provider, PushChannel
from models.db import session_scope
from models.notifications import is_echo, record
from providers.local import ForgedNotification, verify_notification

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
router.include_router(wix_webhooks.router)
router.include_router(google_webhooks.router)
router.include_router(microsoft_webhooks.router)


@router.post(
    "/local",
    summary="Change notifications from a local calendar store",
    responses={401: {"description": "Unknown channel or bad signature"}},
)
async def local_notification(request: Request) -> dict[str, bool]:
    body = await request.body()
    return await run_in_threadpool(receive_local, request.app.state, request.headers, body)


def receive_local(state: Any, headers: Mapping[str, str], body: bytes) -> dict[str, bool]:
    with session_scope(state.engine) as db:
        channel = db.scalar(
            select(PushChannel).where(
                PushChannel.provider == Provider.LOCAL,
                PushChannel.status == ChannelStatus.ACTIVE,
                PushChannel.channel_id == headers.get("x-store-channel", ""),
            )
        )
        secrets = {} if channel is None else {channel.channel_id: channel.secret}
        try:
            note = verify_notification(headers, body, secrets.get)
        except ForgedNotification as error:
            raise HTTPException(status_code=401, detail=str(error)) from None
        assert channel is not None
        calendar_id = channel.calendar_id
        echo = is_echo(db, calendar_id, note.event_id, note.version)
        payload = {"channel": note.channel_id, "message": note.message,
                   "event": note.event_id, "version": note.version}  # fmt: skip
        item = record(db, "local", note.idempotency_key, calendar_id, payload, done=echo)
    if item is None:
        return {"duplicate": True}
    if echo:
        return {"duplicate": False, "echo": True}
    enqueue_recorded(state, [(item, calendar_id)])
    return {"duplicate": False}
