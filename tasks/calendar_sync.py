"""`sync_calendar`: one writer per calendar, coalesced notifications, retries and give-ups."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import redis
from celery import Task, shared_task
from sqlalchemy.exc import InterfaceError, OperationalError

from models import Connection, ExternalCalendar
from models.notifications import open_span
from models.types import utcnow
from providers.errors import PermanentError, ProviderError, TransientError
from tasks.backoff import retry_delay
from tasks.context import WorkerContext, worker_context
from tasks.enqueue import SYNC_CALENDAR, send
from tasks.failures import mark_refused
from tasks.runner import RunOutcome, run_calendar

log = logging.getLogger(__name__)


# calsync's own database or Redis went away (a restart, a failover, a network cut).
OUR_SERVICES_LOST = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)
AFTER_OUTAGE = "outage"  # the trigger of a run retried after one


@shared_task(bind=True, name="tasks.calendar_sync.sync_calendar", max_retries=None)
def sync_calendar(self: Task, calendar_id: str, trigger: str = "webhook", full: bool = False
                  ) -> dict[str, Any]:  # fmt: skip
    context = worker_context()
    try:
        return _sync(self, context, calendar_id, trigger, full)
    except OUR_SERVICES_LOST as error:
        return _retry_after_outage(self, context, calendar_id, error)


def _sync(self: Task, context: WorkerContext, calendar_id: str, trigger: str, full: bool
          ) -> dict[str, Any]:  # fmt: skip
    if trigger == "webhook" and (wait := quiet_wait(context, calendar_id)) > 0:
        # Notifications are still arriving: run once they pause, so one run reads them all.
        send(SYNC_CALENDAR, [calendar_id, trigger, full], countdown=wait)
        return {"postponed": wait}
    context.gate.clear_queued(calendar_id)  # from now on, new notifications need a new task
    token = context.gate.acquire(calendar_id)
    redelivered = (self.request.delivery_info or {}).get("redelivered")
    if token is None and (redelivered or trigger == AFTER_OUTAGE):
        # Handed back because its worker died, or retried after an outage that kept it from
        # giving the lock back: maybe its own lock, which no live holder will follow up on, so
        # come back once that lock has surely expired.
        raise self.retry(countdown=context.settings.calendar_lock_seconds)
    if token is None:
        return {"coalesced": True}  # the running sync will go once more
    try:
        runs = sync_while_dirty(context, calendar_id, token, trigger, full)
    except TransientError as error:
        context.gate.abandon(calendar_id, token)
        return _retry_later(self, context, calendar_id, error)
    except PermanentError as error:
        context.gate.abandon(calendar_id, token)
        mark_error(context, calendar_id, error)
        return {"error": error.reason.value}
    except BaseException:
        context.gate.abandon(calendar_id, token)
        raise
    return {"runs": runs}


def quiet_wait(context: WorkerContext, calendar_id: str) -> float:
    """Seconds until the calendar's notifications have paused for the debounce window, or 0
    when they have. A stream that never pauses still gets a run once the max wait has passed
    since the last run ended (or since the oldest notification came, if later)."""
    settings = context.settings
    with context.sessions() as db:
        span = open_span(db, calendar_id)
        calendar = db.get(ExternalCalendar, calendar_id)
        last_run = None if calendar is None else calendar.last_synced_at
    if span is None:
        return 0.0
    now = utcnow()
    oldest, newest = span
    anchor = max(oldest, last_run) if last_run else oldest
    if (now - anchor).total_seconds() >= settings.notification_max_wait_seconds:
        return 0.0
    return max(0.0, settings.notification_debounce_seconds - (now - newest).total_seconds())


def sync_while_dirty(
    context: WorkerContext, calendar_id: str, token: str, trigger: str, full: bool
) -> int:
    """Run, then run once more for every batch of notifications that came in meanwhile."""
    runs = 0
    heartbeat = context.gate.heartbeat(calendar_id, token)
    while True:
        outcome: RunOutcome = run_calendar(context, calendar_id, trigger, full, heartbeat)
        runs += 1
        if outcome.stopped_by is not None:
            raise outcome.stopped_by
        if not context.gate.release(calendar_id, token):
            return runs
        trigger, full = "follow_up", False


def _retry_later(
    task: Task, context: WorkerContext, calendar_id: str, error: ProviderError
) -> dict[str, Any]:
    assert isinstance(error, TransientError)
    cap = context.settings.max_retry_delay
    delay = retry_delay(task.request.retries, error.retry_after, cap=cap)
    if delay > cap:
        # Longer than a broker countdown may safely be: let the dispatcher pick it up then.
        _defer(context, calendar_id, delay)
        return {"deferred": delay}
    log.info("retrying", extra={"calendar_id": calendar_id, "delay": delay, "error": str(error)})
    raise task.retry(countdown=delay, exc=error)


def _retry_after_outage(
    task: Task, context: WorkerContext, calendar_id: str, error: Exception
) -> dict[str, Any]:
    """Try again, as a full sync, once the service is back. Failing the task would leave the
    calendar's queued mark set (its notifications would send no task until the mark expires)
    and, after writes whose links were not saved, copies no later incremental run knows; a
    full run adopts those by their markers."""
    delay = retry_delay(task.request.retries, None, cap=context.settings.max_retry_delay)
    log.warning("lost the database or Redis, retrying as a full sync",
                extra={"calendar_id": calendar_id, "delay": delay,
                       "error": type(error).__name__})  # fmt: skip
    raise task.retry(args=[calendar_id, AFTER_OUTAGE, True], countdown=delay, exc=error)


def _defer(context: WorkerContext, calendar_id: str, delay: float) -> None:
    with context.sessions() as db, db.begin():
        calendar = db.get(ExternalCalendar, calendar_id)
        connection = None if calendar is None else db.get(Connection, calendar.connection_id)
        if connection is not None:
            connection.next_reconcile_at = utcnow() + timedelta(seconds=delay)


def mark_error(context: WorkerContext, calendar_id: str, error: PermanentError) -> None:
    with context.sessions() as db:
        calendar = db.get(ExternalCalendar, calendar_id)
        connection_id = None if calendar is None else calendar.connection_id
    if connection_id is not None:
        mark_refused(context, connection_id, error)
