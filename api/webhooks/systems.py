"""`POST /webhooks/{system}` (and `/webhooks/{system}/{path}`): push notifications of every
calendar system that pushes, one receiver for all.

The system's `PushReceiver` (`providers.registry`) reads the delivery into notices and
answers in its own way; what happens between is the same for every system: each notice's
channel is found (any status, so the genuine notices of a stopped channel are told apart from
forged ones; its facts are read once per process), its proof checked against the channel's
secret in constant time, and the genuine notices recorded in the inbox under their keys,
together with those of every request arriving meanwhile (`api.webhooks.intake`), by a statement
that also checks each channel still asks for work; then one debounced sync per calendar (or,
for a channel the system says needs mending, a task that mends it). A notice reporting the
version calsync itself wrote is recorded as done, with no sync.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError, ErrorBody
from api.webhooks.intake import Entry, Fate, intake
from models import PushChannel
from models.db import session_scope
from models.notifications import Arrival
from providers import registry
from providers.push import (
    Delivery,
    MalformedDelivery,
    Notice,
    PushReceiver,
    Reply,
    Tally,
)

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
    headers = {k.lower(): v for k, v in request.headers.items()}
    return await deliver(request.app.state, system, path, headers, dict(request.query_params),
                         request.body)  # fmt: skip


async def deliver(
    state: Any, system: str, path: str, headers: dict[str, str], query: dict[str, str],
    body: Callable[[], Awaitable[bytes]],
) -> Response:  # fmt: skip
    """The answer to one delivery: the system's handshake, or its notices received. Served
    by the routes above and, ahead of FastAPI, by `api.webhooks.direct`."""
    receiver = _receiver(state.settings, system)
    early = receiver.handshake(Delivery(headers, query, b"", path))
    if early is None:
        early = await receive(state, system, receiver, Delivery(headers, query, await body(), path))
    return _response(early)


def pushes(settings: Any, system: str) -> bool:
    """Whether the system sends push notifications to `/webhooks/<system>`."""
    try:
        return registry.entry(system, settings).receiver is not None
    except registry.UnknownProvider:
        return False


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
    if reply.media_type == "text/plain":  # an echoed token: whatever it says, never a page
        return PlainTextResponse(str(reply.body), status_code=reply.status,
                                 headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip
    return JSONResponse(reply.body, status_code=reply.status)


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

    async def find(self, ids: Sequence[str]) -> dict[str, ChannelFacts]:
        missing = {i for i in ids if i and i not in self.known and _storable(i)}
        if missing:
            self.known.update(await run_in_threadpool(self._read, missing))
            while len(self.known) > self.size:
                self.known.popitem(last=False)
        return {i: self.known[i] for i in ids if i in self.known}

    def _read(self, ids: set[str]) -> dict[str, ChannelFacts]:
        with session_scope(self.engine) as db:
            rows = db.scalars(select(PushChannel).where(PushChannel.channel_id.in_(ids)))
            return {
                row.channel_id: ChannelFacts(
                    str(row.provider), row.calendar_id, str(row.secret or "")
                )
                for row in rows
            }


def _storable(channel_id: str) -> bool:
    """Whether the database could hold the id: one with NUL or a lone surrogate (text a
    forger sent) names no channel, and asking for it would fail the query."""
    try:
        channel_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in channel_id


def book(state: Any) -> ChannelBook:
    if getattr(state, "channel_book", None) is None:
        state.channel_book = ChannelBook(state.engine)
    found: ChannelBook = state.channel_book
    return found


async def receive(state: Any, system: str, receiver: PushReceiver, delivery: Delivery) -> Reply:
    """Check each notice against its channel, record the genuine ones (`api.webhooks.intake`)
    and answer as the system expects; the tally says what became of them."""
    try:
        notices = receiver.notices(delivery)
    except MalformedDelivery as error:
        raise ApiError(400, f"not a notification of {system}: {error}") from None
    tally = Tally()
    channels = await book(state).find([n.channel_id for n in notices])
    entries = [entry for notice in notices
               if (entry := _check(system, receiver, delivery, notice,
                                   channels.get(notice.channel_id), tally))]  # fmt: skip
    for fate in await intake(state).record(entries):
        _count(tally, fate)
    if tally.unknown or tally.forged:
        log.warning("dropped %d %s notification item(s) that failed their channel's check",
                    tally.unknown + tally.forged, system)  # fmt: skip
    return receiver.answer(tally)


def _check(
    system: str, receiver: PushReceiver, delivery: Delivery, notice: Notice,
    channel: ChannelFacts | None, tally: Tally,
) -> Entry | None:  # fmt: skip
    """The notice to record, or None (counted in the tally) when there is nothing to record.
    An opening records nothing whoever sends it, so it is not checked: a provider sends it as
    it opens the channel, before calsync has committed the channel's row."""
    if notice.opening:
        tally.openings += 1
    elif channel is None or channel.system != system:
        tally.unknown += 1
    elif not _genuine(receiver, notice, delivery, channel.secret):
        tally.forged += 1
    elif not notice.readable:
        tally.unreadable += 1
    else:
        arrival = Arrival(system, notice.key, notice.channel_id, dict(notice.payload),
                          notice.event_id, notice.version)  # fmt: skip
        return Entry(arrival, notice.event)
    return None


def _genuine(receiver: PushReceiver, notice: Notice, delivery: Delivery, secret: str) -> bool:
    """A proof the receiver cannot even compare with the secret (text no secret is made of,
    such as non-ASCII or a lone surrogate) is a forgery, not a failure of ours."""
    try:
        return receiver.genuine(notice, delivery, secret)
    except (TypeError, UnicodeError):
        return False


def _count(tally: Tally, fate: Fate) -> None:
    if fate is Fate.RECORDED:
        tally.recorded += 1
    elif fate is Fate.ECHO:
        tally.echoes += 1
    elif fate is Fate.DUPLICATE:
        tally.duplicates += 1
    else:
        tally.stale += 1
