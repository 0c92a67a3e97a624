"""The first sync of a connection whose primary calendar is only learnt after connecting
(`Capabilities.primary_after_connect`: the API stores a placeholder): list the account's
calendars, fill in the primary's id and record the others (for List Calendars), then ask for a
full sync of each synced calendar. Idempotent: a retry redoes only what is left."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from sqlalchemy import select

from models import PRIMARY_PLACEHOLDER, Connection, ConnectionStatus, ErrorReason, ExternalCalendar
from providers.base import CalendarInfo
from providers.errors import PermanentError, TransientError
from tasks.accounts import account
from tasks.backoff import retry_delay
from tasks.context import WorkerContext, worker_context
from tasks.enqueue import FIRST_SYNC, request_sync
from tasks.failures import mark_failed, mark_refused

ENDED = (ConnectionStatus.DISCONNECTED, ConnectionStatus.ERROR)


@shared_task(bind=True, name=FIRST_SYNC, max_retries=None)
def first_sync(self: Task, connection_id: str) -> dict[str, Any]:
    context = worker_context()
    try:
        return start_syncing(context, connection_id)
    except TransientError as error:
        delay = retry_delay(self.request.retries, error.retry_after,
                            cap=context.settings.max_retry_delay)  # fmt: skip
        raise self.retry(countdown=delay, exc=error) from None


def start_syncing(context: WorkerContext, connection_id: str) -> dict[str, Any]:
    with context.sessions() as db:
        connection = db.get(Connection, connection_id)
        if connection is None or connection.status in ENDED:
            return {"skipped": True}
        unresolved = db.scalar(select(ExternalCalendar.id).where(
            ExternalCalendar.connection_id == connection_id,
            ExternalCalendar.remote_id == PRIMARY_PLACEHOLDER,
        ))  # fmt: skip
        db.expunge_all()
    if unresolved is not None:
        try:
            with account(context, connection) as opened:
                listed = opened.list_calendars()
        except PermanentError as error:
            mark_refused(context, connection_id, error, ErrorReason.TOKEN_REVOKED)
            return {"error": error.reason.value}
        primary = next((c for c in listed if c.primary), None)
        if primary is None:
            mark_failed(context, connection_id, ErrorReason.EXTERNAL_CALENDAR_DELETED,
                        "the account shows no primary calendar")  # fmt: skip
            return {"error": ErrorReason.EXTERNAL_CALENDAR_DELETED.value}
        record_calendars(context, connection_id, unresolved, primary, listed)
    with context.sessions() as db:
        synced = list(db.scalars(select(ExternalCalendar.id).where(
            ExternalCalendar.connection_id == connection_id,
            ExternalCalendar.synced,
        )))  # fmt: skip
    for calendar_id in synced:
        request_sync(context.gate, calendar_id, "connect", full=True)
    return {"synced": len(synced)}


def record_calendars(
    context: WorkerContext, connection_id: str, placeholder_id: str, primary: CalendarInfo,
    listed: list[CalendarInfo],
) -> None:  # fmt: skip
    with context.sessions() as db, db.begin():
        row = db.get(ExternalCalendar, placeholder_id)
        if row is not None:
            row.remote_id, row.name, row.read_only = primary.remote_id, primary.name, False
        known = set(db.scalars(select(ExternalCalendar.remote_id).where(
            ExternalCalendar.connection_id == connection_id)))  # fmt: skip
        for info in listed:
            if info.remote_id not in known and info.remote_id != primary.remote_id:
                db.add(ExternalCalendar(connection_id=connection_id, remote_id=info.remote_id,
                                        name=info.name, read_only=info.read_only))  # fmt: skip
