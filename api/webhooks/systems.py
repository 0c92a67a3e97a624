"""`POST /webhooks/{system}` (and `/webhooks/{system}/{path}`): push notifications of every
calendar system that pushes, one receiver for all.

The system's `PushReceiver` (`providers.registry`) reads the delivery into notices and
answers in its own way; what happens between is the same for every system: each notice's
channel is found (any status, so the genuine notices of a stopped channel are told apart from
forged ones; its facts are read once per process), its proof checked against the channel's
secret in constant time, and a genuine notice recorded in the inbox under its key by one
statement that also checks the channel still asks for work; then one debounced sync per
calendar (or, for a channel the system says needs mending, a task that mends it). A notice
reporting the version calsync itself wrote is recorded as done, with no sync.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import Connection, Engine, select
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError, ErrorBody
from api.webhooks.inbox import enqueue_recorded
from models import InboxStatus, PushChannel
from models.db import session_scope
from models.notifications import is_recorded, mark_received, record_live
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


@dataclass(frozen=True)
class ChannelFacts:
    """What never changes about a channel: its system, its calendar and its secret. Whether
    it still asks for work is read afresh with every notice, in the statement recording it."""

    system: str
    calendar_id: str
    secret: str


class ChannelBook:
    """Channels by id, each read once per process (decrypting its secret included)."""

    def __init__(self, engine: Engine, size: int = 20_000) -> None:
        self.engine, self.size = engine, size
        self.known: OrderedDict[str, ChannelFacts] = OrderedDict()

    def find(self, ids: Sequence[str]) -> dict[str, ChannelFacts]:
        missing = {i for i in ids if i and i not in self.known}
        if missing:
            with session_scope(self.engine) as db:
                for row in db.scalars(select(PushChannel).where(
                        PushChannel.channel_id.in_(missing))):  # fmt: skip
                    self.known[row.channel_id] = ChannelFacts(
                        str(row.provider), row.calendar_id, str(row.secret or ""))
            while len(self.known) > self.size:
                self.known.popitem(last=False)
        return {i: self.known[i] for i in ids if i in self.known}


def book(state: Any) -> ChannelBook:
    if getattr(state, "channel_book", None) is None:
        state.channel_book = ChannelBook(state.engine)
    found: ChannelBook = state.channel_book
    return found


def receive(state: Any, system: str, receiver: PushReceiver, delivery: Delivery) -> Reply:
    try:
        notices = receiver.notices(delivery)
    except MalformedDelivery as error:
        raise ApiError(400, f"not a notification of {system}: {error}") from None
    tally, work = Tally(), Work()
    channels = book(state).find([n.channel_id for n in notices])
    # Each notice is one statement of its own (no transaction around it): one round trip.
    with state.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        for notice in notices:
            _take(db, system, receiver, delivery, notice, channels.get(notice.channel_id),
                  tally, work)  # fmt: skip
    if tally.unknown or tally.forged:
        log.warning("dropped %d %s notification item(s) that failed their channel's check",
                    tally.unknown + tally.forged, system)  # fmt: skip
    enqueue_recorded(state, work.syncs)
    refused = [item for item, channel, event in work.mends
               if not request_channel_mend(channel, event)]  # fmt: skip
    if refused:
        with session_scope(state.engine) as session:
            mark_received(session, refused)
    return receiver.answer(tally)


def _take(
    db: Connection, system: str, receiver: PushReceiver, delivery: Delivery, notice: Notice,
    channel: ChannelFacts | None, tally: Tally, work: Work,
) -> None:  # fmt: skip
    """Check one notice and record what it asks for; the tally says what became of it."""
    if channel is None or channel.system != system:
        tally.unknown += 1
    elif not receiver.genuine(notice, delivery, channel.secret):
        tally.forged += 1
    elif not notice.readable:
        tally.unreadable += 1
    elif notice.opening:
        tally.openings += 1
    else:
        _record(db, system, notice, channel, tally, work)


def _record(db: Connection, system: str, notice: Notice, channel: ChannelFacts, tally: Tally,
            work: Work) -> None:  # fmt: skip
    """Recorded only while the channel is live (active, not run out, its calendar's id known:
    until a first sync has learnt the primary calendar's id no sync could run, and that sync
    lists everything); the echo of calsync's own write is recorded as done."""
    got = record_live(db, system, notice.key, notice.channel_id, dict(notice.payload),
                      notice.event_id, notice.version)  # fmt: skip
    if got is None:
        if is_recorded(db, system, notice.key):
            tally.duplicates += 1
        else:
            tally.stale += 1
        return
    item, status = got
    if status is InboxStatus.DONE:
        tally.echoes += 1
        return
    tally.recorded += 1
    if notice.event in (ChannelEvent.RENEW, ChannelEvent.REOPEN):
        work.mends.append((item, notice.channel_id, notice.event))
    else:
        work.syncs.append((item, channel.calendar_id))
