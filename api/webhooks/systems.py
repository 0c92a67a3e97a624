"""`POST /webhooks/{system}` (and `/webhooks/{system}/{path}`): push notifications of every
calendar system that pushes, one receiver for all.

The system's `PushReceiver` (`providers.registry`) reads the delivery into notices and
answers in its own way; what happens between is the same for every system: each notice's
channel is looked up (any status, so the genuine notices of a stopped channel are told apart
from forged ones), its proof checked against the channel's secret in constant time, and a
genuine notice of a live channel recorded in the inbox under its key, then one debounced
sync per calendar (or, for a channel the system says needs mending, a task that mends it).
A notice reporting the version calsync itself wrote is recorded as done, with no sync.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError, ErrorBody
from api.webhooks.inbox import enqueue_recorded
from models import PRIMARY_PLACEHOLDER, ChannelStatus, ExternalCalendar, PushChannel
from models.db import session_scope
from models.notifications import is_echo, mark_enqueued, record
from models.types import utcnow
from providers import registry
from providers.push import (
    ChannelEvent,
    Delivery,
    MalformedDelivery,
    Notice,
    PushReceiver,
    Reply,
    Tally,
)
from tasks.enqueue import request_channel_mend

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Acknowledged (a handshake answers in the system's own format)"},
    202: {"description": "Recorded"},
    400: {"model": ErrorBody, "description": "Not a delivery of this system"},
    401: {"model": ErrorBody, "description": "No notice carried its channel's proof"},
    404: {"model": ErrorBody, "description": "No calendar system by that name pushes"},
}  # fmt: skip


@router.post("/{system}", summary="Push notifications of a calendar system", responses=_ANSWERS)
async def notification(system: str, request: Request) -> Response:
    return await _receive(system, "", request)


@router.post(
    "/{system}/{path}", summary="Push notifications of a calendar system", responses=_ANSWERS
)
async def notification_at(system: str, path: str, request: Request) -> Response:
    return await _receive(system, path, request)


async def _receive(system: str, path: str, request: Request) -> Response:
    receiver = _receiver(request.app.state.settings, system)
    delivery = Delivery(
        {k.lower(): v for k, v in request.headers.items()}, dict(request.query_params),
        b"", path,
    )  # fmt: skip
    early = receiver.handshake(delivery)
    if early is None:
        delivery = Delivery(delivery.headers, delivery.query, await request.body(), path)
        early = await run_in_threadpool(receive, request.app.state, system, receiver, delivery)
    return _response(early)


def _receiver(settings: Any, system: str) -> PushReceiver:
    try:
        receiver = registry.entry(system, settings).receiver
    except registry.UnknownProvider:
        receiver = None
    if receiver is None:
        raise ApiError(404, "no calendar system by that name sends notifications", field="system")
    return receiver


def _response(reply: Reply) -> Response:
    if reply.status >= 400:
        raise ApiError(reply.status, str(reply.body))
    if reply.media_type == "text/plain":
        return PlainTextResponse(str(reply.body), status_code=reply.status)
    return JSONResponse(reply.body, status_code=reply.status)


@dataclass
class Work:
    """What the notices of one delivery ask for, once recorded."""

    syncs: list[tuple[int, str]] = field(default_factory=list)  # (inbox item, calendar)
    mends: list[tuple[int, str, ChannelEvent]] = field(default_factory=list)  # (item, channel, _)


def receive(state: Any, system: str, receiver: PushReceiver, delivery: Delivery) -> Reply:
    try:
        notices = receiver.notices(delivery)
    except MalformedDelivery as error:
        raise ApiError(400, f"not a notification of {system}: {error}") from None
    tally, work = Tally(), Work()
    with session_scope(state.engine) as db:
        channels = _channels(db, [n.channel_id for n in notices])
        for notice in notices:
            _take(db, system, receiver, delivery, notice, channels.get(notice.channel_id),
                  tally, work)  # fmt: skip
    if tally.unknown or tally.forged:
        log.warning("dropped %d %s notification item(s) that failed their channel's check",
                    tally.unknown + tally.forged, system)  # fmt: skip
    enqueue_recorded(state, work.syncs)
    sent = [item for item, channel, event in work.mends if request_channel_mend(channel, event)]
    if sent:
        with session_scope(state.engine) as db:
            mark_enqueued(db, sent)
    return receiver.answer(tally)


def _channels(db: Session, ids: Sequence[str]) -> dict[str, PushChannel]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = db.scalars(select(PushChannel).where(PushChannel.channel_id.in_(wanted)))
    return {row.channel_id: row for row in rows}


def _take(db: Session, system: str, receiver: PushReceiver, delivery: Delivery, notice: Notice,
          channel: PushChannel | None, tally: Tally, work: Work) -> None:  # fmt: skip
    """Check one notice and record what it asks for; the tally says what became of it."""
    if channel is None or channel.provider != system:
        tally.unknown += 1
    elif not receiver.genuine(notice, delivery, str(channel.secret or "")):
        tally.forged += 1
    elif not notice.readable:
        tally.unreadable += 1
    elif notice.opening:
        tally.openings += 1
    elif not _live(db, channel):
        tally.stale += 1
    else:
        _record(db, system, notice, channel, tally, work)


def _live(db: Session, channel: PushChannel) -> bool:
    """Still asking for work: active, not run out, and its calendar's id known (until a first
    sync has learnt the primary calendar's id, no sync could run; that sync lists all)."""
    if channel.status is not ChannelStatus.ACTIVE or channel.expires_at <= utcnow():
        return False
    calendar = db.get(ExternalCalendar, channel.calendar_id)
    return calendar is not None and calendar.remote_id != PRIMARY_PLACEHOLDER


def _record(db: Session, system: str, notice: Notice, channel: PushChannel, tally: Tally,
            work: Work) -> None:  # fmt: skip
    calendar_id = channel.calendar_id
    echo = is_echo(db, calendar_id, notice.event_id, notice.version)
    item = record(db, system, notice.key, calendar_id, dict(notice.payload), done=echo)
    if item is None:
        tally.duplicates += 1
    elif echo:
        tally.echoes += 1
    else:
        tally.recorded += 1
        if notice.event in (ChannelEvent.RENEW, ChannelEvent.REOPEN):
            work.mends.append((item, channel.channel_id, notice.event))
        else:
            work.syncs.append((item, calendar_id))
