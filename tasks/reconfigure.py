"""A new sync configuration, after the API saved it.

A calendar dropped from import loses its busy blocks on the Wix schedule; a calendar that stops
receiving sessions loses the copies calsync put there (`sync.withdrawal`). A removed block
keeps its link as a tombstone, so that switching import on again writes it anew under a fresh
key; a removed session copy takes its link along (the session may go to another calendar
next). Then the affected calendars get a full sync (a new export target receives the
sessions), and push channels open for calendars that started syncing. A dedicated calendar
asked for is made first. Idempotent: a retry redoes only what is left.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from sqlalchemy import select

from models import Connection, ConnectionStatus, ErrorReason, ExternalCalendar
from providers import registry
from providers.errors import ProviderError, TransientError
from sync.side import Side
from tasks.accounts import account
from tasks.backoff import retry_after_error
from tasks.channels import open_connection_channels
from tasks.context import WorkerContext, worker_context
from tasks.coordination import CalendarBusy
from tasks.copies import remove_copies
from tasks.enqueue import RECONFIGURE, request_sync
from tasks.failures import mark_failed, mark_refused

log = logging.getLogger(__name__)
DEDICATED_ID = "dedicatedCalendarId"
DEDICATED_NAME = "Wix Bookings"


@shared_task(bind=True, name=RECONFIGURE, max_retries=None)
def reconfigure(
    self: Task, connection_id: str, withdraw_imports: list[str], withdraw_exports: list[str],
    resync: list[str], create_dedicated: bool = False,
) -> dict[str, Any]:  # fmt: skip
    context = worker_context()
    try:
        return apply_config_change(context, connection_id, withdraw_imports, withdraw_exports,
                                   resync, create_dedicated)  # fmt: skip
    except (CalendarBusy, TransientError) as error:
        delay = retry_after_error(self.request.retries, error, context.settings.max_retry_delay)
        raise self.retry(countdown=delay, exc=error) from None


def apply_config_change(
    context: WorkerContext, connection_id: str, withdraw_imports: list[str],
    withdraw_exports: list[str], resync: list[str], create_dedicated: bool = False,
) -> dict[str, Any]:  # fmt: skip
    resync = list(resync)
    if create_dedicated:
        made = ensure_dedicated(context, connection_id)
        if made is None:
            return {"error": ErrorReason.EXTERNAL_CALENDAR_CREATION_FAILED.value}
        resync.append(made)
    removed = 0
    for calendar_id in withdraw_imports:
        removed += withdraw(context, connection_id, calendar_id, Side.WIX)
    for calendar_id in withdraw_exports:
        removed += withdraw(context, connection_id, calendar_id, Side.EXTERNAL)
    synced = [c for c in dict.fromkeys(resync) if _still_synced(context, c)]
    for calendar_id in synced:
        request_sync(context.gate, calendar_id, "resync", full=True)
    channels = _open_channels(context, connection_id)
    return {"removed": removed, "resynced": len(synced), "channels": channels}


def _open_channels(context: WorkerContext, connection_id: str) -> int:
    """Push for calendars that started syncing; without it they would follow only by
    reconciliation. Channels of calendars that stopped are stopped when due for renewal."""
    try:
        return open_connection_channels(context, connection_id)
    except ProviderError as error:
        log.warning("could not open channels for connection %s: %s", connection_id, error)
        return 0


def withdraw(context: WorkerContext, connection_id: str, calendar_id: str, side: Side) -> int:
    """Remove the copies calsync made on `side` for this calendar, if that direction is still
    off (a later configuration may have switched it back on)."""
    with context.sessions() as db:
        calendar = db.get(ExternalCalendar, calendar_id)
        connection = db.get(Connection, connection_id)
        if calendar is None or connection is None:
            return 0
        if connection.status is ConnectionStatus.DISCONNECTED:
            return 0
        still_off = not calendar.import_enabled if side is Side.WIX else not calendar.export_target
        db.expunge_all()
    if not still_off:
        return 0
    # Exported links go with their copies: should this calendar receive sessions again, they
    # are copied afresh rather than revived from tombstones of copies deleted long ago.
    with context.gate.held(calendar_id) as beat:
        removal = remove_copies(context, connection, calendar, {side},
                                forget=side is Side.EXTERNAL, beat=beat)  # fmt: skip
    refusal = removal.refused.get(side)
    if refusal is not None:
        mark_refused(context, connection_id, refusal, ErrorReason.TOKEN_REVOKED)
    return removal.deleted


def _still_synced(context: WorkerContext, calendar_id: str) -> bool:
    with context.sessions() as db:
        calendar = db.get(ExternalCalendar, calendar_id)
        return calendar is not None and calendar.synced


def ensure_dedicated(context: WorkerContext, connection_id: str) -> str | None:
    """The dedicated calendar's id (made now if needed and still wanted), or None after marking
    the connection EXTERNAL_CALENDAR_CREATION_FAILED."""
    with context.sessions() as db, db.begin():
        connection = db.get(Connection, connection_id)
        if connection is None:
            return None
        config = dict(connection.sync_config or {})
        existing = config.get(DEDICATED_ID)
        if existing and db.get(ExternalCalendar, existing) is not None:
            return str(existing)
        db.expunge(connection)
    try:  # keyed by the connection: two connections of one account get a calendar each
        entry = registry.entry(connection.provider, context.settings)
        if not entry.capabilities.dedicated_calendar:
            raise NotImplementedError("this calendar system cannot make calendars")
        with account(context, connection) as opened:
            info = opened.create_calendar(DEDICATED_NAME, connection.id)
    except (ProviderError, NotImplementedError) as error:
        if isinstance(error, TransientError):
            raise
        mark_failed(context, connection_id, ErrorReason.EXTERNAL_CALENDAR_CREATION_FAILED,
                    f"could not create the calendar: {error}")  # fmt: skip
        return None
    with context.sessions() as db, db.begin():
        fresh = db.get(Connection, connection_id)
        assert fresh is not None
        wanted = "dedicatedCalendar" in (fresh.sync_config or {}).get("syncToCalendar", {})
        row = db.scalar(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id,
            ExternalCalendar.remote_id == info.remote_id,
        ))  # fmt: skip
        if row is None:
            row = ExternalCalendar(connection_id=connection_id, remote_id=info.remote_id,
                                   name=info.name, read_only=False)  # fmt: skip
            db.add(row)
            db.flush()
        row.export_target = wanted
        fresh.sync_config = {**(fresh.sync_config or {}), DEDICATED_ID: row.id}
        return row.id

