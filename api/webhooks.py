"""Provider webhooks: verify, record in the inbox under an idempotency key, commit, enqueue.

The answer goes out only after the commit, so a notification we acknowledged is never lost;
a duplicate (same idempotency key) is acknowledged and dropped. If the broker is down the
notification stays recorded and the inbox sweeper enqueues it later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from models import ChannelStatus, Provider, PushChannel
from models.db import session_scope
from models.notifications import is_echo, mark_enqueued, record
from providers.local import ForgedNotification, verify_notification
from tasks.context import WorkerContext, build_context
from tasks.enqueue import request_sync

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def worker_context(state: Any) -> WorkerContext:
    if getattr(state, "worker_context", None) is None:
        state.worker_context = build_context(state.settings)
    context: WorkerContext = state.worker_context
    return context


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
    context = worker_context(state)
    delay = context.settings.notification_debounce_seconds
    if request_sync(context, calendar_id, "webhook", delay=delay):
        with session_scope(state.engine) as db:
            mark_enqueued(db, [item])
    return {"duplicate": False}
