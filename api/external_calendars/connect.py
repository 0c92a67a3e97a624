"""Making a connection: one per schedule, its calendars per the default sync configuration, all
in the caller's transaction (so a failure leaves nothing behind). The first sync is asked for
after the commit, by the route.

A schedule has at most one connection that is not disconnected. A connection in ERROR (a
revoked token, say) is taken over by a new connect to the same account: it keeps its calendars
and links, so nothing is copied twice; a connect to another account replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from api.auth import Caller
from api.errors import conflict
from api.external_calendars.common import (
    active_calendar_ids,
    calendars_of,
    guard_schedule,
    live_connection,
)
from api.external_calendars.sync_config import default_config, targets
from config import Settings
from models import Connection, ConnectionStatus, ExternalCalendar
from models.slots import first_due
from models.types import utcnow
from providers import registry
from providers.base import CalendarInfo, ConnectMethod


@dataclass(frozen=True)
class NewAccount:
    provider: str  # a `providers.registry` id
    email: str
    credentials: dict[str, Any]
    calendars: Sequence[CalendarInfo]
    token_expires_at: datetime | None = None
    server_url: str | None = None


@dataclass(frozen=True)
class Made:
    connection: Connection
    sync: list[str]  # calendars to sync first
    replaced: str | None = None  # a connection in ERROR this one replaced (to clean up)


def check_connectable(db: Session, caller: Caller, schedule_id: str) -> Connection | None:
    """Refuse a schedule another tenant uses (404) or one connected already (409); return the
    schedule's connection in ERROR, which a new connect may take over."""
    guard_schedule(db, caller, schedule_id)
    current = live_connection(db, caller, schedule_id)
    if current is not None and current.status is not ConnectionStatus.ERROR:
        raise conflict("this schedule is connected already; disconnect it first", "scheduleId",
                       code="ALREADY_CONNECTED")  # fmt: skip
    return current


def connect(db: Session, caller: Caller, schedule_id: str, account: NewAccount,
            settings: Settings) -> Made:  # fmt: skip
    current = check_connectable(db, caller, schedule_id)
    same = (current is not None and current.provider == account.provider
            and current.external_account_email == account.email)  # fmt: skip
    if current is not None and same:
        return _take_over(db, current, account, settings)
    replaced = None
    if current is not None:
        current.status, replaced = ConnectionStatus.DISCONNECTED, current.id
    connection = Connection(
        tenant_id=caller.tenant_id, provider=account.provider, schedule_id=schedule_id,
        external_account_email=account.email, server_url=account.server_url,
        status=ConnectionStatus.CONNECTED, credentials=account.credentials,
        token_expires_at=account.token_expires_at, sync_config={},
    )  # fmt: skip
    _schedule(connection, settings)
    db.add(connection)
    db.flush()
    rows = [_row(connection.id, info) for info in account.calendars]
    db.add_all(rows)
    db.flush()
    entry = registry.entry(account.provider, settings)
    connection.sync_config = default_config(entry.capabilities.connect is ConnectMethod.OAUTH, rows)
    _apply(connection.sync_config, rows)
    return Made(connection, active_calendar_ids(rows), replaced)


def _take_over(db: Session, connection: Connection, account: NewAccount, settings: Settings
               ) -> Made:  # fmt: skip
    connection.credentials = account.credentials
    connection.token_expires_at = account.token_expires_at
    connection.status, connection.error_reason = ConnectionStatus.CONNECTED, None
    connection.error_message = None
    _schedule(connection, settings)
    rows = calendars_of(db, connection.id)
    known = {row.remote_id for row in rows}
    fresh = [_row(connection.id, info) for info in account.calendars if info.remote_id not in known]
    db.add_all(fresh)
    db.flush()
    rows += fresh
    _apply(connection.sync_config or {}, rows)
    return Made(connection, active_calendar_ids(rows))


def _row(connection_id: str, info: CalendarInfo) -> ExternalCalendar:
    return ExternalCalendar(
        connection_id=connection_id, remote_id=info.remote_id, name=info.name,
        is_primary=info.primary, read_only=info.read_only,
    )  # fmt: skip


def _apply(config: dict[str, Any], rows: Sequence[ExternalCalendar]) -> None:
    wanted = targets(config, rows)
    for row in rows:
        row.import_enabled = row.id in wanted.imports
        row.export_target = row.id == wanted.export


def _schedule(connection: Connection, settings: Settings) -> None:
    """The connect itself syncs at once; the first reconciliation comes anywhere in one
    interval (connections made together do not reconcile together), polling one poll on."""
    now = utcnow()
    connection.next_reconcile_at = first_due(now, settings.reconcile_interval)
    if connection.provider in registry.polled(settings):
        connection.next_poll_at = now + timedelta(seconds=settings.caldav_poll_interval)


def resync_soon(db: Session, connection_id: str) -> None:
    """The broker refused the first sync: let the dispatcher pick the connection up instead."""
    connection = db.get(Connection, connection_id)
    if connection is not None:
        connection.next_reconcile_at = utcnow()
