"""Disconnecting, after the API marked the connection DISCONNECTED (so no sync run starts
meanwhile; a run still going holds its calendar's lock, which the clean-up waits for).

Push channels are stopped, every copy is removed from both sides (sessions exported to the
external calendar, blocks imported into Wix) and the links forgotten, and the credentials are
wiped. Idempotent: a retry redoes only what is left. A side that refuses (a revoked token)
keeps its copies; the run's record says so.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Task, shared_task
from sqlalchemy import select

from models import Connection, ConnectionStatus, ExternalCalendar, RunStatus, SyncRun
from models.types import utcnow
from providers.errors import TransientError
from sync.side import Side
from tasks.backoff import retry_after_error
from tasks.channels import stop_connection_channels
from tasks.context import WorkerContext, worker_context
from tasks.coordination import CalendarBusy
from tasks.copies import Removal, remove_copies
from tasks.enqueue import DISCONNECT


@shared_task(bind=True, name=DISCONNECT, max_retries=None)
def disconnect(self: Task, connection_id: str) -> dict[str, Any]:
    context = worker_context()
    try:
        return clean_up(context, connection_id)
    except (CalendarBusy, TransientError) as error:
        delay = retry_after_error(self.request.retries, error, context.settings.max_retry_delay)
        raise self.retry(countdown=delay, exc=error) from None


def clean_up(context: WorkerContext, connection_id: str) -> dict[str, Any]:
    with context.sessions() as db, db.begin():
        connection = db.get(Connection, connection_id)
        if connection is None or connection.status is not ConnectionStatus.DISCONNECTED:
            return {"skipped": True}  # reconnected meanwhile, or gone
        calendars = list(db.scalars(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id)))  # fmt: skip
        run = SyncRun(connection_id=connection_id, calendar_id=None, kind="disconnect",
                      trigger="disconnect")  # fmt: skip
        db.add(run)
        db.flush()
        run_id = run.id
        db.expunge_all()
    clock = time.monotonic()
    stop_connection_channels(context, connection_id)
    total = Removal()
    for calendar in calendars:
        with context.gate.held(calendar.id) as beat:
            removal = remove_copies(context, connection, calendar, {Side.WIX, Side.EXTERNAL},
                                    forget=True, final=True, beat=beat)  # fmt: skip
        total.deleted += removal.deleted
        total.refused.update(removal.refused)
    _finish(context, connection_id, run_id, total, clock)
    return {"deleted": total.deleted, "refused": sorted(s.value for s in total.refused)}


def _finish(context: WorkerContext, connection_id: str, run_id: str, total: Removal,
            clock: float) -> None:  # fmt: skip
    with context.sessions() as db, db.begin():
        run = db.get(SyncRun, run_id)
        connection = db.get(Connection, connection_id)
        assert run is not None and connection is not None
        run.deleted, run.finished_at = total.deleted, utcnow()
        run.duration_ms = int((time.monotonic() - clock) * 1000)
        run.status = RunStatus.FAILED if total.refused else RunStatus.SUCCEEDED
        if total.refused:
            run.errors = len(total.refused)
            run.error = "; ".join(f"{s.value}: {e}" for s, e in sorted(total.refused.items()))
        if connection.status is ConnectionStatus.DISCONNECTED:
            connection.credentials = None  # nothing may act for the account any more
            connection.token_expires_at = None
