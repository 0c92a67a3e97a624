"""Push channels: opened per synced calendar, renewed before they expire (the new one first,
then the old one stopped, so no notification falls between), stopped on disconnect.

Providers with channels: the local store and Google (`events.watch`). Microsoft's
subscriptions follow the same life; CalDAV has none and is polled.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import datetime, timedelta

from celery import shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    ChannelStatus,
    Connection,
    ConnectionStatus,
    ExternalCalendar,
    Provider,
    PushChannel,
)
from models.types import utcnow
from providers.base import ProviderError
from providers.local import LocalCalendar
from tasks.accounts import google_account
from tasks.context import WorkerContext, worker_context

log = logging.getLogger(__name__)
LOCAL_CHANNEL_DAYS = 7
WATCHED = (Provider.LOCAL, Provider.GOOGLE)
_ENDED = (ConnectionStatus.DISCONNECTED, ConnectionStatus.ERROR)


def open_channel(
    context: WorkerContext, connection: Connection, calendar: ExternalCalendar,
    provider: Provider | None = None, resource: str | None = None,
) -> PushChannel:  # fmt: skip
    """Start a channel for one calendar; the caller adds the returned row. A `local` channel
    may also watch the store calendar standing in for the Wix side (`resource`)."""
    provider = provider or connection.provider
    channel_id, secret = uuid.uuid4().hex, secrets.token_urlsafe(32)
    row = PushChannel(calendar_id=calendar.id, provider=provider, channel_id=channel_id,
                      secret=secret)  # fmt: skip
    address = context.settings.webhook_url(provider.value)
    if provider is Provider.GOOGLE:
        watched = google_account(context, connection).watch(
            calendar.remote_id, channel_id, secret, address
        )
        row.resource_id = watched.resource_id
        row.expires_at = watched.expires_at or utcnow() + timedelta(days=7)
    elif provider is Provider.LOCAL:
        row.resource_id = resource or calendar.remote_id
        LocalCalendar(_store_of(context, connection), row.resource_id, context.http).watch(
            channel_id, address, secret
        )
        row.expires_at = utcnow() + timedelta(days=LOCAL_CHANNEL_DAYS)
    else:
        raise ValueError(f"{provider.value} has no push channels")
    return row


def _store_of(context: WorkerContext, connection: Connection) -> str:
    """The local store a local channel lives in: the connection's, or the Wix side's."""
    store = connection.server_url if connection.provider is Provider.LOCAL else None
    store = store or context.settings.wix_local_store_url
    assert store, "a local channel needs a store"
    return store


def stop_channel(context: WorkerContext, connection: Connection, channel: PushChannel) -> None:
    """Ask the provider to stop sending; a channel it no longer knows counts as stopped."""
    if channel.provider is Provider.GOOGLE:
        google_account(context, connection).stop_channel(
            channel.channel_id, channel.resource_id or ""
        )
    elif channel.provider is Provider.LOCAL:
        LocalCalendar(_store_of(context, connection), channel.resource_id or "", context.http
                      ).stop_watch(channel.channel_id)  # fmt: skip
    channel.status = ChannelStatus.STOPPED


@shared_task(name="tasks.maintenance.open_channels")
def open_channels(connection_id: str) -> dict[str, int]:
    return {"opened": open_connection_channels(worker_context(), connection_id)}


def open_connection_channels(context: WorkerContext, connection_id: str) -> int:
    """A channel for each synced calendar of the connection that has none live."""
    opened = 0
    with context.sessions() as db, db.begin():
        connection = db.get(Connection, connection_id)
        if connection is None or connection.provider not in WATCHED:
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
            try:
                stop_channel(context, connection, channel)
            except ProviderError as error:  # it expires by itself; our receiver ignores it
                log.warning("could not stop channel %s: %s", channel.channel_id, error)
                channel.status = ChannelStatus.STOPPED
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
                   PushChannel.provider.in_(WATCHED))
            .with_for_update(skip_locked=True)
        ).all()  # fmt: skip
        for old in expiring:
            calendar = db.get(ExternalCalendar, old.calendar_id)
            connection = None if calendar is None else db.get(Connection, calendar.connection_id)
            if calendar is None or connection is None:
                old.status = ChannelStatus.STOPPED
                continue
            if not _still_wanted(connection, calendar):
                _stop_orphan(context, connection, old)
                continue
            try:
                db.add(open_channel(context, connection, calendar, old.provider, old.resource_id))
                stop_channel(context, connection, old)
            except ProviderError as error:  # tried again on the next round
                log.warning("could not renew channel %s: %s", old.channel_id, error)
                continue
            renewed += 1
    return renewed


def _still_wanted(connection: Connection, calendar: ExternalCalendar) -> bool:
    """A channel is only worth renewing for a calendar that syncs, of a live connection."""
    synced = calendar.import_enabled or calendar.export_target
    return synced and connection.status not in _ENDED


def _stop_orphan(context: WorkerContext, connection: Connection, channel: PushChannel) -> None:
    """A channel nothing needs any more (calendar dropped, connection ended): stop it rather
    than let it run out, so the provider stops calling."""
    try:
        stop_channel(context, connection, channel)
    except ProviderError as error:  # it runs out by itself; our receiver ignores it meanwhile
        log.warning("could not stop orphaned channel %s: %s", channel.channel_id, error)
        channel.status = ChannelStatus.STOPPED


def _synced_calendars(db: Session, connection_id: str) -> list[ExternalCalendar]:
    return list(db.scalars(select(ExternalCalendar).where(
        ExternalCalendar.connection_id == connection_id,
        ExternalCalendar.import_enabled | ExternalCalendar.export_target,
    )))  # fmt: skip
