"""Beat's periodic work: due reconciliations and polls, the inbox sweep, renewals, retention.

Beat fires one task per kind of work; the fan-out per connection happens here, from the
database (`next_reconcile_at` / `next_poll_at`), so schedules survive restarts and spread out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from models import (
    Connection,
    ConnectionStatus,
    ExternalCalendar,
    InboxItem,
    InboxStatus,
    SyncRun,
)
from models.notifications import mark_enqueued, unsent_calendars
from models.slots import next_due
from models.types import utcnow
from providers import registry
from tasks.context import WorkerContext, worker_context
from tasks.enqueue import request_calendar_refreshes, request_owner_lookups, request_syncs

ACTIVE = (ConnectionStatus.CONNECTED, ConnectionStatus.SYNC_IN_PROGRESS, ConnectionStatus.SYNCED)
BATCH = 500


def claim_due(db: Session, column: Any, now: datetime, interval: float, limit: int
              ) -> list[Connection]:  # fmt: skip
    """Due connections, locked so that a second dispatcher skips them, and moved to their next
    slot in the same transaction."""
    query = (
        select(Connection)
        .where(Connection.status.in_(ACTIVE), column.is_not(None), column <= now)
        .order_by(column)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    due = list(db.scalars(query))
    for connection in due:
        setattr(connection, column.key, next_due(now, interval))
    return due


def calendars_of(db: Session, connection_ids: list[str]) -> list[str]:
    query = select(ExternalCalendar.id).where(
        ExternalCalendar.connection_id.in_(connection_ids),
        ExternalCalendar.synced,
    )
    return list(db.scalars(query))


@shared_task(name="tasks.maintenance.dispatch")
def dispatch() -> dict[str, int]:
    return dispatch_due(worker_context())


def dispatch_due(context: WorkerContext, now: datetime | None = None) -> dict[str, int]:
    """Everything due, a batch per short transaction, so a backlog (after an outage, or more
    polled calendars than one batch) drains in one tick without holding locks long."""
    now, counts = now or utcnow(), {"reconciled": 0, "polled": 0}
    while True:
        reconciled, polled, full_batch = _dispatch_batch(context, now)
        counts["reconciled"] += reconciled
        counts["polled"] += polled
        if not full_batch:
            return counts


def _dispatch_batch(context: WorkerContext, now: datetime) -> tuple[int, int, bool]:
    settings = context.settings
    with context.sessions() as db, db.begin():
        reconcile = claim_due(db, Connection.next_reconcile_at, now,
                              settings.reconcile_interval, BATCH)  # fmt: skip
        polls = claim_due(db, Connection.next_poll_at, now, settings.caldav_poll_interval, BATCH)
        without_push = registry.polled(settings)
        full = calendars_of(db, [c.id for c in reconcile])
        polled = calendars_of(db, [c.id for c in polls if c.provider in without_push])
    request_syncs(context.gate, full, "reconcile", full=True)
    request_calendar_refreshes([c.id for c in reconcile])  # a reconciliation relists calendars
    if settings.wix_app_id and not settings.wix_local_store_url:  # a schedule can change hands
        request_owner_lookups([c.id for c in reconcile])
    request_syncs(context.gate, polled, "poll")
    return len(full), len(polled), BATCH in (len(reconcile), len(polls))


@shared_task(name="tasks.maintenance.sweep_inbox")
def sweep_inbox() -> dict[str, int]:
    return sweep(worker_context())


def sweep(context: WorkerContext, now: datetime | None = None) -> dict[str, int]:
    """Hand the broker what was recorded but never sent (or sent and evidently lost)."""
    now, settings = now or utcnow(), context.settings
    received_before = now - timedelta(seconds=settings.inbox_sweep_after)
    enqueued_before = now - timedelta(seconds=max(120, 4 * settings.inbox_sweep_after))
    with context.sessions() as db:
        calendars = unsent_calendars(db, received_before, enqueued_before)
    sent = request_syncs(context.gate, calendars, "sweep")
    if sent:
        with context.sessions() as db, db.begin():
            ids = db.scalars(
                select(InboxItem.id).where(
                    InboxItem.calendar_id.in_(sent), InboxItem.status == InboxStatus.RECEIVED
                )
            )
            mark_enqueued(db, list(ids))
            db.execute(
                update(InboxItem)
                .where(InboxItem.calendar_id.in_(sent), InboxItem.status == InboxStatus.ENQUEUED)
                .values(enqueued_at=now)
            )
    return {"calendars": len(sent)}


@shared_task(name="tasks.maintenance.prune")
def prune() -> dict[str, int]:
    return prune_old(worker_context())


def prune_old(context: WorkerContext, now: datetime | None = None) -> dict[str, int]:
    now, settings = now or utcnow(), context.settings
    old_items = delete(InboxItem).where(
        InboxItem.status == InboxStatus.DONE,
        InboxItem.received_at < now - timedelta(days=settings.inbox_retention_days),
    )
    old_runs = delete(SyncRun).where(
        SyncRun.started_at < now - timedelta(days=settings.sync_run_retention_days)
    )
    with context.sessions() as db, db.begin():
        inbox = db.execute(old_items.returning(InboxItem.id)).all()
        runs = db.execute(old_runs.returning(SyncRun.id)).all()
    return {"inbox": len(inbox), "sync_runs": len(runs)}
