"""Push channels: opened per synced calendar of a system that pushes, renewed before they expire,
mended when the system says so, stopped on disconnect.

How a channel is renewed is the system's own (`CalendarAccount.renew_channel`): Graph extends a
subscription in place; Google and the local store open a new channel first and then stop the
old one, so no notification falls between. Systems without push are polled (`maintenance`).

The local store standing in for the Wix side (`CALSYNC_WIX_LOCAL_STORE_URL`) has channels too,
on the store calendar of the schedule: a channel row names its own system, which may differ
from its connection's.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import INACTIVE, ChannelStatus, Connection, ExternalCalendar, PushChannel
from models.types import utcnow
from providers import registry
from providers.base import Channel
from providers.errors import ProviderError, TransientError
from providers.push import ChannelEvent
from tasks.accounts import account
from tasks.backoff import retry_after_error
from tasks.context import WorkerContext, worker_context
from tasks.enqueue import MEND_CHANNEL, OPEN_CHANNELS, request_sync

log = logging.getLogger(__name__)


def channel_of(row: PushChannel) -> Channel:
    return Channel(row.channel_id, row.resource_id or "", row.secret or "", row.expires_at)


def row_of(calendar: ExternalCalendar, system: str, channel: Channel) -> PushChannel:
    return PushChannel(calendar_id=calendar.id, provider=system, channel_id=channel.channel_id,
                       resource_id=channel.resource_id, secret=channel.secret,
                       expires_at=channel.expires_at)  # fmt: skip


def open_channel(
    context: WorkerContext, connection: Connection, calendar: ExternalCalendar,
    system: str | None = None, resource: str | None = None,
) -> PushChannel:  # fmt: skip
    """Start a channel for one calendar; the caller adds the returned row. `system` and
    `resource`: a channel of the local store standing in for the Wix side, on its calendar."""
    system = system or str(connection.provider)
    with account(context, connection, system=system) as opened:
        made = opened.open_channel(resource or calendar.remote_id,
                                   context.settings.webhook_url(system))  # fmt: skip
    return row_of(calendar, system, made)


def renew_channel(context: WorkerContext, db: Session, connection: Connection,
                  calendar: ExternalCalendar, old: PushChannel) -> None:  # fmt: skip
    """The channel that carries on: `old` extended, or a new row (and `old` stopped)."""
    system = str(old.provider)
    with account(context, connection, system=system) as opened:
        fresh = opened.renew_channel(channel_of(old), calendar.remote_id,
                                     context.settings.webhook_url(system))  # fmt: skip
    if fresh.channel_id == old.channel_id:
        old.expires_at = fresh.expires_at
        return
    old.status = ChannelStatus.STOPPED
    db.add(row_of(calendar, system, fresh))


def reopen_channel(context: WorkerContext, db: Session, connection: Connection,
                   calendar: ExternalCalendar, old: PushChannel) -> None:  # fmt: skip
    """A new channel for one the system removed on its side."""
    db.add(open_channel(context, connection, calendar, str(old.provider), old.resource_id
                        if old.provider != connection.provider else None))  # fmt: skip
    old.status = ChannelStatus.STOPPED


def stop_channel(context: WorkerContext, connection: Connection, channel: PushChannel) -> None:
    """Ask the system to stop sending; a channel it no longer knows counts as stopped."""
    with account(context, connection, system=str(channel.provider)) as opened:
        opened.stop_channel(channel_of(channel))
    channel.status = ChannelStatus.STOPPED


@shared_task(name=OPEN_CHANNELS)
def open_channels(connection_id: str) -> dict[str, int]:
    return {"opened": open_connection_channels(worker_context(), connection_id)}


def open_connection_channels(context: WorkerContext, connection_id: str) -> int:
    """A channel for each synced calendar of the connection that has none live."""
    opened = 0
    with context.sessions() as db, db.begin():
        connection = db.get(Connection, connection_id)
        if connection is None or not _pushes(context, str(connection.provider)):
            return 0
        for calendar in _synced_calendars(db, connection_id):
            live = db.scalar(select(PushChannel.id).where(
                PushChannel.calendar_id == calendar.id,
                PushChannel.status == ChannelStatus.ACTIVE,
            ))  # fmt: skip
            if live is None:
                db.add(open_channel(context, connection, calendar))
                opened += 1
    return opened


def _pushes(context: WorkerContext, system: str) -> bool:
    return system in registry.pushing(context.settings)


def stop_connection_channels(context: WorkerContext, connection_id: str) -> int:
    """Stop every live channel of the connection (disconnect)."""
    stopped = 0
    with context.sessions() as db, db.begin():
        connection = db.get(Connection, connection_id)
        if connection is None:
            return 0
        channels = db.scalars(
            select(PushChannel)
            .join(ExternalCalendar, ExternalCalendar.id == PushChannel.calendar_id)
            .where(ExternalCalendar.connection_id == connection_id,
                   PushChannel.status == ChannelStatus.ACTIVE)
        ).all()  # fmt: skip
        for channel in channels:
            stop_orphan(context, connection, channel)
            stopped += 1
    return stopped


@shared_task(name="tasks.maintenance.renew_channels")
def renew_channels() -> dict[str, int]:
    return {"renewed": renew_expiring(worker_context())}


def renew_expiring(context: WorkerContext, now: datetime | None = None) -> int:
    horizon = (now or utcnow()) + timedelta(seconds=context.settings.channel_renew_before)
    renewed = 0
    with context.sessions() as db, db.begin():
        expiring = db.scalars(
            select(PushChannel)
            .where(PushChannel.status == ChannelStatus.ACTIVE, PushChannel.expires_at < horizon,
                   PushChannel.provider.in_(registry.pushing(context.settings)))
            .with_for_update(skip_locked=True)
        ).all()  # fmt: skip
        for old in expiring:
            found = _owners(db, context, old)
            if found is None:
                continue
            connection, calendar = found
            try:
                renew_channel(context, db, connection, calendar, old)
            except ProviderError as error:  # tried again on the next round
                log.warning("could not renew channel %s: %s", old.channel_id, error)
                continue
            renewed += 1
    return renewed


def _owners(db: Session, context: WorkerContext, channel: PushChannel
            ) -> tuple[Connection, ExternalCalendar] | None:  # fmt: skip
    """The channel's connection and calendar while it is worth keeping; otherwise it is
    stopped here and None returned."""
    calendar = db.get(ExternalCalendar, channel.calendar_id)
    connection = None if calendar is None else db.get(Connection, calendar.connection_id)
    if calendar is None or connection is None:
        channel.status = ChannelStatus.STOPPED
        return None
    if not still_wanted(connection, calendar):
        stop_orphan(context, connection, channel)
        return None
    return connection, calendar


def still_wanted(connection: Connection, calendar: ExternalCalendar) -> bool:
    """A channel is only worth renewing for a calendar that syncs, of a live connection."""
    return calendar.synced and connection.status not in INACTIVE


def stop_orphan(context: WorkerContext, connection: Connection, channel: PushChannel) -> None:
    """A channel nothing needs any more: stop it rather than let it run out, so the system
    stops calling. If it cannot be reached, the channel runs out by itself and the receiver
    ignores it meanwhile."""
    try:
        stop_channel(context, connection, channel)
    except ProviderError as error:
        log.warning("could not stop channel %s: %s", channel.channel_id, error)
        channel.status = ChannelStatus.STOPPED


# -- what a system says about a channel (Graph's lifecycle notifications) ----------------------


@shared_task(bind=True, name=MEND_CHANNEL, max_retries=None)
def mend_channel(self: Task, channel_id: str, event: str) -> dict[str, Any]:
    context = worker_context()
    try:
        return mend(context, channel_id, ChannelEvent(event))
    except TransientError as error:
        delay = retry_after_error(self.request.retries, error, context.settings.max_retry_delay)
        raise self.retry(countdown=delay, exc=error) from None


def mend(context: WorkerContext, channel_id: str, event: ChannelEvent) -> dict[str, Any]:
    """Renew the channel now (which also lets a paused one deliver again) or open a new one,
    then sync once: changes made while it was paused or gone were never notified. A refusal
    that is not transient leaves the channel due for beat's renewal round."""
    with context.sessions() as db, db.begin():
        channel = db.scalar(select(PushChannel).where(
            PushChannel.channel_id == channel_id, PushChannel.status == ChannelStatus.ACTIVE,
        ).with_for_update())  # fmt: skip
        if channel is None:
            return {"skipped": "no live channel"}  # already replaced or stopped
        found = _owners(db, context, channel)
        if found is None:
            return {"stopped": channel_id}
        connection, calendar = found
        calendar_id = calendar.id
        try:
            if event is ChannelEvent.REOPEN:
                reopen_channel(context, db, connection, calendar, channel)
            else:
                renew_channel(context, db, connection, calendar, channel)
        except TransientError:
            raise
        except ProviderError as error:  # a refused handshake, a revoked token, ...
            log.warning("could not act on %s for channel %s: %s", event.value, channel_id, error)
            channel.expires_at = utcnow()
    request_sync(context.gate, calendar_id, "lifecycle")
    return {"event": event.value, "calendar": calendar_id}


def _synced_calendars(db: Session, connection_id: str) -> list[ExternalCalendar]:
    return list(db.scalars(select(ExternalCalendar).where(
        ExternalCalendar.connection_id == connection_id,
        ExternalCalendar.synced,
    )))  # fmt: skip
