"""Push channels: opened per synced calendar, renewed before they expire (the new one first,
then the old one stopped, so no notification falls between), stopped on disconnect.

Providers with channels: the local store, Google (`events.watch`) and Microsoft (Graph
subscriptions, renewed in place: see `_renew`). CalDAV has none and is polled.

A Graph subscription is on `/me/events`, the whole mailbox (the only event resource Graph
documents): each synced calendar still gets its own, so a change anywhere in the mailbox asks
each calendar for one delta round, which is empty for the calendars the change is not in.
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
    INACTIVE,
    ChannelStatus,
    Connection,
    ExternalCalendar,
    Provider,
    PushChannel,
)
from models.types import utcnow
from providers.base import NotFound, ProviderError
from providers.local import LocalCalendar
from providers.microsoft import EVENTS_RESOURCE
from tasks.accounts import google_account, microsoft_account
from tasks.context import WorkerContext, worker_context

log = logging.getLogger(__name__)
LOCAL_CHANNEL_DAYS = 7
# Graph's limit for Outlook event subscriptions is 10,080 minutes now and was 4,230: stay inside
# the smaller one; renewal comes `channel_renew_before` (a day by default) earlier still.
GRAPH_SUBSCRIPTION_MINUTES = 4_200
WATCHED = (Provider.LOCAL, Provider.GOOGLE, Provider.MICROSOFT)


def open_channel(
    context: WorkerContext, connection: Connection, calendar: ExternalCalendar,
    provider: Provider | None = None, resource: str | None = None,
) -> PushChannel:  # fmt: skip
    """Start a channel for one calendar; the caller adds the returned row. A `local` channel
    may also watch the store calendar standing in for the Wix side (`resource`)."""
    provider = provider or connection.provider
    if provider is Provider.MICROSOFT:
        return open_subscription(context, connection, calendar)
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


def open_subscription(
    context: WorkerContext, connection: Connection, calendar: ExternalCalendar
) -> PushChannel:
    """A Graph subscription to the mailbox's events; Graph runs the validation handshake on
    both of our URLs before it answers. Its id is the channel id, and its random clientState
    (stored encrypted) is what every notification must carry."""
    client_state = secrets.token_urlsafe(32)  # Graph allows up to 128 characters
    address = context.settings.webhook_url(Provider.MICROSOFT.value)
    expires = utcnow() + timedelta(minutes=GRAPH_SUBSCRIPTION_MINUTES)
    account = microsoft_account(context, connection)
    try:
        made = account.subscribe(EVENTS_RESOURCE, address, f"{address}/lifecycle", client_state,
                                 expires)  # fmt: skip
    finally:
        account.close()
    return PushChannel(calendar_id=calendar.id, provider=Provider.MICROSOFT, channel_id=made.id,
                       resource_id=made.resource, secret=client_state,
                       expires_at=made.expires_at)  # fmt: skip


def renew_subscription(
    context: WorkerContext, connection: Connection, calendar: ExternalCalendar,
    channel: PushChannel,
) -> PushChannel | None:  # fmt: skip
    """PATCH the expiry (which also reauthorizes); None when `channel` itself runs on. A
    subscription Graph no longer has is replaced: the new row is returned, the old one stopped
    (only once the new one exists, so a failure leaves it due for the next round)."""
    expires = utcnow() + timedelta(minutes=GRAPH_SUBSCRIPTION_MINUTES)
    account = microsoft_account(context, connection)
    try:
        channel.expires_at = account.renew(channel.channel_id, expires).expires_at
        return None
    except NotFound:
        pass  # Graph removed it
    finally:
        account.close()
    return replace_subscription(context, connection, calendar, channel)


def replace_subscription(
    context: WorkerContext, connection: Connection, calendar: ExternalCalendar,
    channel: PushChannel,
) -> PushChannel:  # fmt: skip
    """A new subscription for a calendar whose old one Graph removed; the caller adds it."""
    fresh = open_subscription(context, connection, calendar)
    channel.status = ChannelStatus.STOPPED
    return fresh


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
    elif channel.provider is Provider.MICROSOFT:
        account = microsoft_account(context, connection)
        try:
            account.unsubscribe(channel.channel_id)  # a 404 counts as done
        finally:
            account.close()
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
            if not still_wanted(connection, calendar):
                stop_orphan(context, connection, old)
                continue
            try:
                _renew(context, db, connection, calendar, old)
            except ProviderError as error:  # tried again on the next round
                log.warning("could not renew channel %s: %s", old.channel_id, error)
                continue
            renewed += 1
    return renewed


def _renew(context: WorkerContext, db: Session, connection: Connection,
           calendar: ExternalCalendar, old: PushChannel) -> None:  # fmt: skip
    if old.provider is Provider.MICROSOFT:
        # Graph documents renewal as a PATCH of expirationDateTime on the same subscription
        # (reference §2.1): the id, clientState and lifecycle URL stay, no second handshake, and
        # never two subscriptions delivering every change twice. new-then-stop would buy nothing.
        fresh = renew_subscription(context, connection, calendar, old)
        if fresh is not None:
            db.add(fresh)
        return
    db.add(open_channel(context, connection, calendar, old.provider, old.resource_id))
    stop_channel(context, connection, old)


def still_wanted(connection: Connection, calendar: ExternalCalendar) -> bool:
    """A channel is only worth renewing for a calendar that syncs, of a live connection."""
    return calendar.synced and connection.status not in INACTIVE


def stop_orphan(context: WorkerContext, connection: Connection, channel: PushChannel) -> None:
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
        ExternalCalendar.synced,
    )))  # fmt: skip
