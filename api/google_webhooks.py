"""`POST /webhooks/google`: Google Calendar push notifications (watch channels).

Google sends no body: the headers name the channel, carry our channel token and say what
happened. The first message of a channel (`sync`) is only acknowledged; `exists` /
`not_exists` go into the inbox under channel id + message number and ask for one sync of the
calendar. A channel we do not know (or no longer run) gets 200 without work, so Google stops
retrying; a known channel with the wrong token gets 401.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.inbox import enqueue_recorded
from models import ChannelStatus, Provider, PushChannel
from models.db import session_scope
from models.notifications import record
from models.types import utcnow
from providers.google_push import Verdict, verify_notification

router = APIRouter(tags=["webhooks"])


@router.post(
    "/google",
    summary="Push notifications from Google Calendar watch channels",
    responses={401: {"description": "A known channel with the wrong token"}},
)
async def google_notification(request: Request) -> dict[str, Any]:
    return await run_in_threadpool(receive_google, request.app.state, dict(request.headers))


def receive_google(state: Any, headers: Mapping[str, str]) -> dict[str, Any]:
    channel_id = headers.get("x-goog-channel-id", "")
    with session_scope(state.engine) as db:
        channel = db.scalar(
            select(PushChannel).where(
                PushChannel.provider == Provider.GOOGLE,
                PushChannel.status == ChannelStatus.ACTIVE,
                PushChannel.channel_id == channel_id,
                PushChannel.expires_at > utcnow(),
            )
        )
        token = None if channel is None else str(channel.secret)
        check = verify_notification(headers, lambda _: token)
        if check.verdict is not Verdict.GENUINE:
            if check.http_status >= 400:
                raise HTTPException(check.http_status, detail=f"notification {check.verdict}")
            return {"ignored": check.verdict.value}
        note = check.notification
        assert note is not None and channel is not None
        if note.is_sync:
            return {"sync": True}
        payload = {"channel": note.channel_id, "message": note.message_number,
                   "state": note.state}  # fmt: skip
        calendar_id = channel.calendar_id
        item = record(db, "google", note.idempotency_key, calendar_id, payload)
    if item is None:
        return {"duplicate": True}
    enqueue_recorded(state, [(item, calendar_id)])
    return {"duplicate": False}
