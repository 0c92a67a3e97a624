"""What the External Calendars routes share: tenant-scoped lookups, the connection's JSON view,
timestamps in Wix's format."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.auth import Caller
from api.errors import not_found
from api.external_calendars.catalog import of
from api.external_calendars.schema import (
    ConnectionOut,
    ConnectionStatusValue,
    ErrorReasonValue,
)
from api.external_calendars.sync_config import config_out
from config import Settings
from models import Connection, ConnectionStatus, ExternalCalendar, SyncRequest

LIVE = (ConnectionStatus.CONNECTED, ConnectionStatus.SYNC_IN_PROGRESS, ConnectionStatus.SYNCED)


def rfc3339(moment: datetime | None) -> str | None:
    """`2023-01-02T01:00:00.000Z`, as Wix writes timestamps."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def tenant_connection(db: Session, caller: Caller, connection_id: str, *, lock: bool = False
                      ) -> Connection:  # fmt: skip
    """The caller's connection; another tenant's is as unknown as a missing one (404)."""
    query = select(Connection).where(
        Connection.id == connection_id, Connection.tenant_id == caller.tenant_id
    )
    connection = db.scalar(query.with_for_update() if lock else query)
    if connection is None:
        raise not_found("connectionId", "connection")
    return connection


def guard_schedule(db: Session, caller: Caller, schedule_id: str, field: str = "scheduleId"
                   ) -> None:  # fmt: skip
    """Schedule ids are global (Wix GUIDs): one another tenant uses is not the caller's (404)."""
    theirs = select(Connection.id).where(
        Connection.schedule_id == schedule_id, Connection.tenant_id != caller.tenant_id
    )
    requested = select(SyncRequest.id).where(
        SyncRequest.resource_id == schedule_id, SyncRequest.tenant_id != caller.tenant_id
    )
    if db.scalar(theirs.limit(1)) is not None or db.scalar(requested.limit(1)) is not None:
        raise not_found(field, "schedule")


def live_connection(db: Session, caller: Caller, schedule_id: str) -> Connection | None:
    """The schedule's connection that is not disconnected (one at a time per schedule)."""
    query = select(Connection).where(
        Connection.tenant_id == caller.tenant_id,
        Connection.schedule_id == schedule_id,
        or_(Connection.status.in_(LIVE), Connection.status == ConnectionStatus.ERROR),
    )
    return db.scalars(query.order_by(Connection.created_at.desc())).first()


def calendars_of(db: Session, connection_id: str) -> list[ExternalCalendar]:
    return calendars_by_connection(db, [connection_id])[connection_id]


def calendars_by_connection(db: Session, connection_ids: list[str]
                            ) -> dict[str, list[ExternalCalendar]]:  # fmt: skip
    """The calendars of several connections in one query, primary first, then by name."""
    query = select(ExternalCalendar).where(ExternalCalendar.connection_id.in_(connection_ids))
    order = (ExternalCalendar.is_primary.desc(), ExternalCalendar.name, ExternalCalendar.remote_id)
    grouped: dict[str, list[ExternalCalendar]] = {key: [] for key in connection_ids}
    for calendar in db.scalars(query.order_by(*order)):
        grouped[calendar.connection_id].append(calendar)
    return grouped


def active_calendar_ids(calendars: Iterable[ExternalCalendar]) -> list[str]:
    return [c.id for c in calendars if c.synced]


def error_reason_out(connection: Connection) -> ErrorReasonValue | None:
    """Set only when the status is ERROR, as Wix documents."""
    if connection.status is not ConnectionStatus.ERROR:
        return None
    reason = connection.error_reason
    return ErrorReasonValue(reason.value if reason else "UNDEFINED")


def connection_out(db: Session, connection: Connection, settings: Settings,
                   calendars: list[ExternalCalendar] | None = None) -> ConnectionOut:  # fmt: skip
    """The connection's JSON view; `calendars` when the caller read them already."""
    entry = of(settings, connection.provider)
    if calendars is None:
        calendars = calendars_of(db, connection.id)
    return ConnectionOut(
        id=connection.id,
        providerId=entry.out.id,
        calendarType=entry.out.calendarType,
        scheduleId=connection.schedule_id,
        userId=connection.user_id,
        appId=settings.wix_app_id or None,
        externalAccountEmail=connection.external_account_email,
        status=ConnectionStatusValue(connection.status.value),
        errorReason=error_reason_out(connection),
        syncConfig=config_out(connection.sync_config or {}, calendars),
    )
