"""Beat's periodic work: due reconciliations and polls, the inbox sweep, renewals, retention.

Beat fires one task per kind of work; the fan-out per connection happens here, from the
database (`next_reconcile_at` / `next_poll_at`), so schedules survive restarts and spread out.
"""

from __future__ import annotations

import random
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
from models.types import utcnow
from providers import registry
from tasks.context import WorkerContext, worker_context
from tasks.enqueue import request_sync

ACTIVE = (ConnectionStatus.CONNECTED, ConnectionStatus.SYNC_IN_PROGRESS, ConnectionStatus.SYNCED)
BATCH = 500


def first_due(now: datetime, interval: float, rng: random.Random | None = None) -> datetime:
    """A new connection's first slot, anywhere in one interval: many connections spread out."""
    return now + timedelta(seconds=interval * (rng or random).random())


def next_due(now: datetime, interval: float, rng: random.Random | None = None) -> datetime:
    """The slot after a run: one interval on, with ±10 % jitter so slots never bunch up."""
    return now + timedelta(seconds=interval * (0.9 + 0.2 * (rng or random).random()))


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
    now, settings = now or utcnow(), context.settings
    without_push = registry.polled(settings)
    with context.sessions() as db, db.begin():
        reconcile = claim_due(db, Connection.next_reconcile_at, now,
                              settings.reconcile_interval, BATCH)  # fmt: skip
        polls = [c for c in claim_due(db, Connection.next_poll_at, now,
                                      settings.caldav_poll_interval, BATCH)
                 if c.provider in without_push]  # fmt: skip
        full = calendars_of(db, [c.id for c in reconcile])
        polled = calendars_of(db, [c.id for c in polls])
    for calendar_id in full:
        request_sync(context.gate, calendar_id, "reconcile", full=True)
    for calendar_id in polled:
        request_sync(context.gate, calendar_id, "poll")
    return {"reconciled": len(full), "polled": len(polled)}


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
    sent = [c for c in calendars if request_sync(context.gate, c, "sweep")]
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
