"""`POST /webhooks/microsoft` and `POST /webhooks/microsoft/lifecycle`: Microsoft Graph's change
and lifecycle notifications (reference §2.1).

- A `validationToken` query parameter is Graph's handshake when a subscription is made: the
  decoded token goes back at once as 200 `text/plain`, before any database work.
- Every item's `clientState` is compared in constant time with the one stored, encrypted, for
  its subscription (`PushChannel.secret`; the channel id is the Graph subscription id). A wrong
  or unknown one is dropped and logged (counted, never shown); a request in which no item was
  valid is refused with 401, like the other receivers' forged deliveries, and records nothing.
- Change items go into the inbox (Graph redelivers for up to four hours: the key is the
  change), then one debounced sync per calendar; 202 well inside Graph's 3 seconds.
- Lifecycle items go into the inbox too; `missed` then asks for a sync, the other two for a
  worker task (`tasks.subscriptions`) that calls Graph, then syncs. 202, as Graph asks.
- A genuine item of a subscription calsync already stopped is acknowledged without work, so
  Graph stops resending it; so is one for a calendar connected a moment ago whose id the first
  sync has not learnt yet (that sync lists everything).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.errors import ErrorBody
from api.inbox import enqueue_recorded
from models import PRIMARY_PLACEHOLDER, ChannelStatus, ExternalCalendar, Provider, PushChannel
from models.db import session_scope
from models.notifications import is_echo, mark_enqueued, record
from models.types import utcnow
from providers.microsoft_notifications import (
    ChangeNotice,
    ClientStateFor,
    LifecycleEvent,
    LifecycleNotice,
    MalformedNotification,
    parse_lifecycle,
    parse_notifications,
)
from tasks.subscriptions import request_lifecycle

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
INBOX = "microsoft"
N = TypeVar("N", ChangeNotice, LifecycleNotice)

_ITEMS = {"type": "array", "items": {"type": "object"}}
_BODY = {"requestBody": {"required": False, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"value": _ITEMS}}}}}}  # fmt: skip
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The validation handshake: the decoded `validationToken`",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    202: {"description": "Recorded (or nothing to do)",
          "content": {"application/json": {"schema": {"type": "object"}}}},
    400: {"model": ErrorBody, "description": "Not a notification collection"},
    401: {"model": ErrorBody, "description": "No item carried its subscription's clientState"},
}  # fmt: skip
TokenQuery = Query(None, alias="validationToken", description="Graph's handshake token")


@router.post(
    "/microsoft",
    summary="Change notifications from Microsoft Graph subscriptions",
    status_code=202,
    response_class=JSONResponse,
    responses=_ANSWERS,
    openapi_extra=_BODY,
)
async def microsoft_notification(request: Request, token: str | None = TokenQuery) -> Response:
    return await _answer(request, token, receive_changes)


@router.post(
    "/microsoft/lifecycle",
    summary="Lifecycle notifications from Microsoft Graph subscriptions",
    status_code=202,
    response_class=JSONResponse,
    responses=_ANSWERS,
    openapi_extra=_BODY,
)
async def microsoft_lifecycle(request: Request, token: str | None = TokenQuery) -> Response:
    return await _answer(request, token, receive_lifecycle)


async def _answer(request: Request, token: str | None,
                  receive: Callable[[Any, bytes], dict[str, int]]) -> Response:  # fmt: skip
    """The handshake at once; else the deliveries, recorded off the event loop."""
    if token is not None:
        return PlainTextResponse(token)
    body = await request.body()
    answer = await run_in_threadpool(receive, request.app.state, body)
    return JSONResponse(answer, status_code=202)


@dataclass
class Subscriptions:
    """The subscriptions one request names, each read once (any status: a stopped one's
    genuine items are told apart from forged ones)."""

    db: Session
    found: dict[str, PushChannel | None] = field(default_factory=dict)

    def channel(self, subscription_id: str) -> PushChannel | None:
        if subscription_id not in self.found:
            self.found[subscription_id] = self.db.scalar(select(PushChannel).where(
                PushChannel.provider == Provider.MICROSOFT,
                PushChannel.channel_id == subscription_id,
            ))  # fmt: skip
        return self.found[subscription_id]

    def client_state(self, subscription_id: str) -> str | None:
        channel = self.channel(subscription_id)
        return None if channel is None or channel.secret is None else str(channel.secret)

    def live(self, subscription_id: str) -> PushChannel | None:
        """The subscription if it still asks for work: active, and its calendar's id known.
        Until the first sync has learnt the primary calendar's id (`first_sync`), a sync could
        not run; that first sync lists everything anyway."""
        channel = self.channel(subscription_id)
        if channel is None or channel.status is not ChannelStatus.ACTIVE:
            return None
        calendar = self.db.get(ExternalCalendar, channel.calendar_id)
        return None if calendar is None or calendar.remote_id == PRIMARY_PLACEHOLDER else channel


def receive_changes(state: Any, body: bytes) -> dict[str, int]:
    with session_scope(state.engine) as db:
        known = Subscriptions(db)
        notices, rejected = _checked(parse_notifications, body, known)
        recorded = [r for r in (_record_change(db, known, n) for n in notices) if r is not None]
    enqueue_recorded(state, recorded)
    return {"recorded": len(recorded), "rejected": rejected}


def _record_change(db: Session, known: Subscriptions, notice: ChangeNotice
                   ) -> tuple[int, str] | None:  # fmt: skip
    channel = known.live(notice.subscription_id)
    if channel is None:
        return None
    calendar_id = channel.calendar_id
    echo = is_echo(db, calendar_id, notice.event_id, notice.etag)
    payload = {"subscription": notice.subscription_id, "change": notice.change_type,
               "event": notice.event_id, "version": notice.etag}  # fmt: skip
    item = record(db, INBOX, notice.idempotency_key, calendar_id, payload, done=echo)
    return None if item is None or echo else (item, calendar_id)


def receive_lifecycle(state: Any, body: bytes) -> dict[str, int]:
    syncs: list[tuple[int, str]] = []
    work: list[tuple[int, LifecycleNotice]] = []
    with session_scope(state.engine) as db:
        known = Subscriptions(db)
        notices, rejected = _checked(parse_lifecycle, body, known)
        for notice in notices:
            channel = known.live(notice.subscription_id)
            if channel is None:
                continue
            payload = {"subscription": notice.subscription_id, "lifecycle": notice.event.value}
            key = notice.idempotency_key(utcnow())
            item = record(db, INBOX, key, channel.calendar_id, payload)
            if item is None:
                continue
            if notice.event is LifecycleEvent.MISSED:
                syncs.append((item, channel.calendar_id))
            else:
                work.append((item, notice))
    enqueue_recorded(state, syncs)
    sent = [item for item, n in work if request_lifecycle(n.subscription_id, n.event)]
    if sent:
        with session_scope(state.engine) as db:
            mark_enqueued(db, sent)
    return {"recorded": len(syncs) + len(work), "rejected": rejected}


def _checked(parse: Callable[[bytes, ClientStateFor], tuple[list[N], int]], body: bytes,
             known: Subscriptions) -> tuple[list[N], int]:  # fmt: skip
    """Parse and check the items; log the rejected ones, refuse a request with no valid one."""
    try:
        notices, rejected = parse(body, known.client_state)
    except MalformedNotification as error:
        raise HTTPException(status_code=400, detail=f"not a notification collection: {error}"
                            ) from None  # fmt: skip
    if rejected:
        log.warning("dropped %d Microsoft notification item(s) with a wrong or unknown "
                    "clientState", rejected)  # fmt: skip
    if rejected and not notices:
        raise HTTPException(status_code=401, detail="no item carried a valid clientState")
    return notices, rejected
