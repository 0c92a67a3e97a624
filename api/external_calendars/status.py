"""`GET connections/{id}/status` (calsync addition): how a connection's sync is doing.

Last sync and its age, the lag of the last complete run (notification received to change
applied), notifications recorded but not applied yet, failed runs of the last day, changes that
keep failing (dead letters), conflicts not yet looked at, each calendar's last run, and the
disconnect clean-up once one was asked for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from api.auth import CallerDep
from api.errors import responses
from api.external_calendars.common import (
    calendars_of,
    error_reason_out,
    rfc3339,
    tenant_connection,
)
from api.external_calendars.ids import CONNECTION, ConnectionId
from api.external_calendars.schema import (
    CalendarStatusOut,
    ConnectionStatusResponse,
    ConnectionStatusValue,
    RunSummary,
)
from models import (
    Conflict,
    ConflictStatus,
    ConnectionStatus,
    DeadLetter,
    ExternalCalendar,
    InboxItem,
    InboxStatus,
    RunStatus,
    SyncRun,
)
from models.db import session_scope
from models.types import utcnow

router = APIRouter()
OPEN_INBOX = (InboxStatus.RECEIVED, InboxStatus.ENQUEUED)


@router.get(
    f"{CONNECTION}/status",
    summary="Connection status (calsync addition)",
    response_model=ConnectionStatusResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403, 404),
)
def connection_status(
    connection_id: ConnectionId, caller: CallerDep, request: Request
) -> ConnectionStatusResponse:
    now = utcnow()
    with session_scope(request.app.state.engine) as db:
        connection = tenant_connection(db, caller, connection_id)
        calendars = calendars_of(db, connection_id)
        last = connection.last_synced_at
        error = connection.status is ConnectionStatus.ERROR
        return ConnectionStatusResponse(
            connectionId=connection.id,
            status=ConnectionStatusValue(connection.status.value),
            errorReason=error_reason_out(connection),
            errorMessage=connection.error_message if error else None,
            lastSyncedDate=rfc3339(last),
            secondsSinceLastSync=None if last is None else int((now - last).total_seconds()),
            lagMs=_last_lag(db, connection_id),
            **_counts(db, connection_id, [c.id for c in calendars], now),
            calendars=[_calendar(db, c) for c in calendars],
            cleanup=_summary(
                _latest(db, SyncRun.connection_id == connection_id, SyncRun.kind == "disconnect")
            ),
        )


def _counts(db: Session, connection_id: str, calendar_ids: list[str], now: datetime
            ) -> dict[str, int]:  # fmt: skip
    def count(model: Any, *where: ColumnElement[bool]) -> int:
        return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    return {
        "pendingChanges": count(InboxItem, InboxItem.calendar_id.in_(calendar_ids),
                                InboxItem.status.in_(OPEN_INBOX)),
        "failedRuns24h": count(SyncRun, SyncRun.connection_id == connection_id,
                               SyncRun.status == RunStatus.FAILED,
                               SyncRun.started_at > now - timedelta(days=1)),
        "deadLetters": count(DeadLetter, DeadLetter.connection_id == connection_id),
        "openConflicts": count(Conflict, Conflict.connection_id == connection_id,
                               Conflict.status == ConflictStatus.OPEN),
    }  # fmt: skip


def _last_lag(db: Session, connection_id: str) -> int | None:
    query = (
        select(SyncRun.lag_ms)
        .where(SyncRun.connection_id == connection_id, SyncRun.lag_ms.is_not(None),
               SyncRun.status == RunStatus.SUCCEEDED)
        .order_by(SyncRun.finished_at.desc())
        .limit(1)
    )  # fmt: skip
    return db.scalar(query)


def _calendar(db: Session, calendar: ExternalCalendar) -> CalendarStatusOut:
    return CalendarStatusOut(
        id=calendar.remote_id, name=calendar.name, importEnabled=calendar.import_enabled,
        exportTarget=calendar.export_target, lastSyncedDate=rfc3339(calendar.last_synced_at),
        lastRun=_summary(_latest(db, SyncRun.calendar_id == calendar.id)),
    )  # fmt: skip


def _latest(db: Session, *where: ColumnElement[bool]) -> SyncRun | None:
    return db.scalar(select(SyncRun).where(*where).order_by(SyncRun.started_at.desc()).limit(1))


def _summary(run: SyncRun | None) -> RunSummary | None:
    if run is None:
        return None
    return RunSummary(
        id=run.id, kind=run.kind, trigger=run.trigger, status=run.status.value,
        startedDate=rfc3339(run.started_at) or "", finishedDate=rfc3339(run.finished_at),
        created=run.created, updated=run.updated, deleted=run.deleted, conflicts=run.conflicts,
        errors=run.errors, error=run.error, lagMs=run.lag_ms,
    )  # fmt: skip
