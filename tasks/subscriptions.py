"""Graph lifecycle notices, acted on in a worker: the API only records and enqueues them
(reference §2.1, M-LIFE).

- `reauthorizationRequired`: renew the subscription, a PATCH of its expiry that also
  reauthorizes (one call where `reauthorize` would leave the renewal for later), then one sync:
  Graph may have paused delivery before we acted, and changes in a pause are never notified.
- `subscriptionRemoved`: a new subscription (new id and clientState), then one sync for what
  changed meanwhile.
- `missed`: only a sync, which the API asks for itself (a delta round from the stored cursor
  sees every change since, notified or not).

A provider error that is not transient leaves the subscription due for beat's renewal round
(`expires_at` = now), which renews it or, if Graph no longer has it, makes a new one.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Task, shared_task
from kombu.exceptions import OperationalError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ChannelStatus, Connection, ExternalCalendar, Provider, PushChannel
from models.types import utcnow
from providers.base import ProviderError, TransientError
from providers.microsoft import LifecycleEvent
from tasks.backoff import retry_delay
from tasks.channels import renew_subscription, replace_subscription, still_wanted, stop_orphan
from tasks.context import WorkerContext, worker_context
from tasks.enqueue import request_sync

log = logging.getLogger(__name__)


def request_lifecycle(subscription_id: str, event: LifecycleEvent) -> bool:
    """What the API calls after its commit; False when the broker could not be reached (the
    inbox sweeper then asks for the sync, and beat's renewal round mends the subscription)."""
    try:
        microsoft_lifecycle.apply_async(args=[subscription_id, event.value], retry=False)
    except (OperationalError, redis.RedisError):
        log.warning("broker unreachable", extra={"task": microsoft_lifecycle.name})
        return False
    return True


@shared_task(bind=True, name="tasks.maintenance.microsoft_lifecycle", max_retries=None)
def microsoft_lifecycle(self: Task, subscription_id: str, event: str) -> dict[str, Any]:
    context = worker_context()
    try:
        return handle_lifecycle(context, subscription_id, LifecycleEvent(event))
    except TransientError as error:
        delay = retry_delay(self.request.retries, error.retry_after,
                            cap=context.settings.max_retry_delay)  # fmt: skip
        raise self.retry(countdown=delay, exc=error) from None


def handle_lifecycle(
    context: WorkerContext, subscription_id: str, event: LifecycleEvent
) -> dict[str, Any]:
    with context.sessions() as db, db.begin():
        channel = db.scalar(select(PushChannel).where(
            PushChannel.provider == Provider.MICROSOFT,
            PushChannel.channel_id == subscription_id,
            PushChannel.status == ChannelStatus.ACTIVE,
        ).with_for_update())  # fmt: skip
        if channel is None:
            return {"skipped": "no live subscription"}  # already replaced or stopped
        calendar = db.get(ExternalCalendar, channel.calendar_id)
        connection = None if calendar is None else db.get(Connection, calendar.connection_id)
        if calendar is None or connection is None:
            channel.status = ChannelStatus.STOPPED
            return {"stopped": subscription_id}
        if not still_wanted(connection, calendar):
            stop_orphan(context, connection, channel)
            return {"stopped": subscription_id}
        calendar_id = calendar.id
        _mend(context, db, connection, calendar, channel, event)
    request_sync(context, calendar_id, "lifecycle")
    return {"event": event.value, "calendar": calendar_id}


def _mend(context: WorkerContext, db: Session, connection: Connection, calendar: ExternalCalendar,
          channel: PushChannel, event: LifecycleEvent) -> None:  # fmt: skip
    try:
        if event is LifecycleEvent.SUBSCRIPTION_REMOVED:
            db.add(replace_subscription(context, connection, calendar, channel))
        elif event is LifecycleEvent.REAUTHORIZATION_REQUIRED:
            fresh = renew_subscription(context, connection, calendar, channel)
            if fresh is not None:
                db.add(fresh)
    except TransientError:
        raise
    except ProviderError as error:  # a refused handshake, a revoked token, ...
        log.warning("could not act on %s for subscription %s: %s", event.value,
                    channel.channel_id, error)  # fmt: skip
        channel.expires_at = utcnow()  # beat's next renewal round tries again
