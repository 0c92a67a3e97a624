"""Push channels: opened per calendar, renewed before they expire (new one first, then the old
one stopped, so no notification falls between), stopped on disconnect."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from celery import shared_task
from sqlalchemy import select

from models import ChannelStatus, Connection, ExternalCalendar, Provider, PushChannel
from models.types import utcnow
from providers.local import LocalCalendar
from tasks.context import WorkerContext, worker_context

LOCAL_CHANNEL_DAYS = 7


def open_local_channel(
    context: WorkerContext, connection: Connection, calendar: ExternalCalendar, store_calendar: str
) -> PushChannel:
    """Watch one calendar of a local store; the caller adds the returned row."""
    assert connection.server_url, "a local connection names its store"
    channel_id, secret = uuid.uuid4().hex, secrets.token_hex(16)
    LocalCalendar(connection.server_url, store_calendar, context.http).watch(
        channel_id, context.settings.webhook_url("local"), secret
    )
    return PushChannel(
        calendar_id=calendar.id, provider=Provider.LOCAL, channel_id=channel_id,
        resource_id=store_calendar, secret=secret,
        expires_at=utcnow() + timedelta(days=LOCAL_CHANNEL_DAYS),
    )  # fmt: skip


@shared_task(name="tasks.maintenance.renew_channels")
def renew_channels() -> dict[str, int]:
    return {"renewed": renew_expiring(worker_context())}


def renew_expiring(context: WorkerContext, now: datetime | None = None) -> int:
    horizon = (now or utcnow()) + timedelta(seconds=context.settings.channel_renew_before)
    renewed = 0
    with context.sessions() as db, db.begin():
        expiring = db.scalars(
            select(PushChannel)
            .where(PushChannel.status == ChannelStatus.ACTIVE, PushChannel.expires_at < horizon)
            .with_for_update(skip_locked=True)
        ).all()
        for old in expiring:
            calendar = db.get(ExternalCalendar, old.calendar_id)
            connection = None if calendar is None else db.get(Connection, calendar.connection_id)
            if calendar is None or connection is None or old.provider is not Provider.LOCAL:
                continue  # other providers renew through their own modules
            db.add(open_local_channel(context, connection, calendar, old.resource_id or ""))
            LocalCalendar(connection.server_url or "", old.resource_id or "", context.http
                          ).stop_watch(old.channel_id)  # fmt: skip
            old.status = ChannelStatus.STOPPED
            renewed += 1
    return renewed
