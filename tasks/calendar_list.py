"""A connection's calendars as its account lists them now, on each full reconciliation and on
request (`POST connections/{id}/calendars:refresh`).

The rows follow the listing: a new calendar gets a row that syncs nothing until the sync
configuration names it; a listed one takes its current name, read-only flag and primary mark.
A calendar the account no longer lists loses its row only when nothing ties calsync to it (it
does not sync and no link names it); otherwise the row and its links stay, since the other side
still holds the copies, and the row is marked `gone_at` and reported, until the calendar comes
back or a person changes the sync configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from celery import Task, shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    PRIMARY_PLACEHOLDER,
    Connection,
    ConnectionStatus,
    ErrorReason,
    ExternalCalendar,
    Link,
)
from models.types import utcnow
from providers.base import CalendarInfo
from providers.errors import PermanentError, TransientError
from tasks.accounts import account
from tasks.backoff import retry_after_error
from tasks.context import WorkerContext, worker_context
from tasks.enqueue import REFRESH_CALENDARS
from tasks.failures import mark_refused

log = logging.getLogger(__name__)


@dataclass
class Refreshed:
    """What a refresh changed, by the provider's calendar ids."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # synced or linked, now missing: kept
    back: list[str] = field(default_factory=list)  # marked gone before, listed again


@shared_task(bind=True, name=REFRESH_CALENDARS, max_retries=None)
def refresh_calendars(self: Task, connection_id: str) -> dict[str, Any]:
    context = worker_context()
    try:
        return refresh(context, connection_id)
    except TransientError as error:
        delay = retry_after_error(self.request.retries, error, context.settings.max_retry_delay)
        raise self.retry(countdown=delay, exc=error) from None


def refresh(context: WorkerContext, connection_id: str) -> dict[str, Any]:
    """List the account's calendars and bring the connection's rows in line."""
    with context.sessions() as db:
        connection = db.get(Connection, connection_id)
        if connection is None or connection.status is ConnectionStatus.DISCONNECTED:
            return {"skipped": "disconnected"}
        if _placeholder(db, connection_id):
            return {"skipped": "primary not learnt yet"}  # the first sync lists them
        db.expunge_all()
    try:
        with account(context, connection) as opened:
            listed = opened.list_calendars()
    except PermanentError as error:
        mark_refused(context, connection_id, error, ErrorReason.TOKEN_REVOKED)
        return {"error": error.reason.value}
    with context.sessions() as db, db.begin():
        # The connection's row lock orders this with the other writers of its calendars.
        locked = db.get(Connection, connection_id, with_for_update=True)
        if locked is None or locked.status is ConnectionStatus.DISCONNECTED:
            return {"skipped": "disconnected"}
        refreshed = follow_listing(db, connection_id, listed, utcnow())
    if refreshed.gone:
        log.warning("synced calendars gone from the account", extra={
            "connection_id": connection_id, "calendars": refreshed.gone})  # fmt: skip
    return asdict(refreshed)


def follow_listing(db: Session, connection_id: str, listed: Sequence[CalendarInfo],
                   now: datetime) -> Refreshed:  # fmt: skip
    query = select(ExternalCalendar).where(ExternalCalendar.connection_id == connection_id)
    rows = {row.remote_id: row for row in db.scalars(query)}
    refreshed = Refreshed()
    for info in listed:
        row = rows.pop(info.remote_id, None)
        if row is None:
            db.add(ExternalCalendar(connection_id=connection_id, remote_id=info.remote_id,
                                    name=info.name, is_primary=info.primary,
                                    read_only=info.read_only))  # fmt: skip
            refreshed.added.append(info.remote_id)
            continue
        if row.gone_at is not None:
            row.gone_at = None
            refreshed.back.append(info.remote_id)
        if (row.name, row.read_only, row.is_primary) != (info.name, info.read_only, info.primary):
            row.name, row.read_only, row.is_primary = info.name, info.read_only, info.primary
            refreshed.changed.append(info.remote_id)
    linked = _linked(db, [row.id for row in rows.values()])
    for remote_id, row in rows.items():
        if row.synced or row.id in linked:
            if row.gone_at is None:
                row.gone_at = now
            refreshed.gone.append(remote_id)
        else:
            db.delete(row)
            refreshed.removed.append(remote_id)
    return refreshed


def _linked(db: Session, calendar_ids: list[str]) -> set[str]:
    """The calendars with a live link (a copy calsync made there, or imported from there);
    a tombstone ties nothing: both its events are gone."""
    if not calendar_ids:
        return set()
    query = select(Link.calendar_id).where(Link.calendar_id.in_(calendar_ids),
                                           Link.tombstone.is_(False)).distinct()  # fmt: skip
    return set(db.scalars(query))


def _placeholder(db: Session, connection_id: str) -> bool:
    query = select(ExternalCalendar.id).where(
        ExternalCalendar.connection_id == connection_id,
        ExternalCalendar.remote_id == PRIMARY_PLACEHOLDER,
    )
    return db.scalar(query) is not None
