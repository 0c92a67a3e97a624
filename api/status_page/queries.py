"""What the status page shows, read from calsync's own records in a few grouped queries:
businesses with a one-line health each, and per business its connections, calendars, the
events synced each way, recent runs, dead letters and conflicts still to look at."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.external_calendars.common import calendars_by_connection
from config import Settings
from models import (
    Conflict,
    ConflictStatus,
    Connection,
    ConnectionStatus,
    DeadLetter,
    DeadLetterStatus,
    ExternalCalendar,
    Link,
    RunStatus,
    Side,
    SyncRun,
    Tenant,
)
from providers import registry

RECENT_RUNS, LISTED = 25, 100
TO_LOOK_AT = (ConflictStatus.OPEN, ConflictStatus.RESOLVING)


@dataclass
class TenantLine:
    tenant: Tenant
    connections: int = 0
    in_error: int = 0
    open_conflicts: int = 0
    parked: int = 0
    last_synced: datetime | None = None

    @property
    def healthy(self) -> bool:
        return not (self.in_error or self.open_conflicts or self.parked)

    @property
    def health(self) -> str:
        if not self.connections:
            return "no calendar connected"
        problems = [f"{n} {what}" for n, what in (
            (self.in_error, "connection(s) in error"), (self.open_conflicts, "open conflict(s)"),
            (self.parked, "parked change(s)")) if n]  # fmt: skip
        return ", ".join(problems) or f"{self.connections} connection(s) syncing"


@dataclass
class CalendarLine:
    calendar: ExternalCalendar
    last_run: SyncRun | None
    lag_ms: int | None  # of the last run that finished well

    @property
    def progress(self) -> tuple[int, int] | None:
        """x of y, while a large run goes on."""
        run = self.last_run
        if run is None or run.status is not RunStatus.RUNNING or not run.planned:
            return None
        return min(run.progress or 0, run.planned), run.planned


@dataclass
class ConnectionLine:
    connection: Connection
    provider: str
    calendars: list[CalendarLine]
    exported: int = 0  # Wix sessions copied into the calendar
    imported: int = 0  # calendar events blocking time in Wix


@dataclass
class TenantPage:
    tenant: Tenant
    connections: list[ConnectionLine]
    runs: list[SyncRun]
    letters: list[DeadLetter]
    conflicts: list[Conflict]
    calendar_names: dict[str, str] = field(default_factory=dict)

    def calendar_name(self, calendar_id: str | None) -> str:
        return self.calendar_names.get(calendar_id or "", "")

    def connection_name(self, connection_id: str) -> str:
        for line in self.connections:
            if line.connection.id == connection_id:
                who = line.connection.external_account_email or line.connection.schedule_id
                return f"{line.provider} · {who}"
        return connection_id

    @property
    def in_progress(self) -> bool:
        return any(c.progress for line in self.connections for c in line.calendars)


def tenant_lines(db: Session) -> list[TenantLine]:
    tenants = db.scalars(select(Tenant).order_by(Tenant.name, Tenant.id))
    lines = {tenant.id: TenantLine(tenant) for tenant in tenants}
    per_status = select(Connection.tenant_id, Connection.status, func.count(),
                        func.max(Connection.last_synced_at)).group_by(
        Connection.tenant_id, Connection.status)  # fmt: skip
    for tenant_id, status, count, last in db.execute(per_status):
        line = lines[tenant_id]
        line.connections += count if status is not ConnectionStatus.DISCONNECTED else 0
        line.in_error += count if status is ConnectionStatus.ERROR else 0
        line.last_synced = max(filter(None, (line.last_synced, last)), default=None)
    for tenant_id, count in _per_tenant(db, Conflict, Conflict.status == ConflictStatus.OPEN):
        lines[tenant_id].open_conflicts = count
    for tenant_id, count in _per_tenant(db, DeadLetter,
                                        DeadLetter.status == DeadLetterStatus.PARKED):  # fmt: skip
        lines[tenant_id].parked = count
    return list(lines.values())


def _per_tenant(db: Session, model: Any, where: Any) -> list[tuple[str, int]]:
    query = (select(Connection.tenant_id, func.count()).select_from(model)
             .join(Connection, Connection.id == model.connection_id).where(where)
             .group_by(Connection.tenant_id))  # fmt: skip
    return [(tenant_id, int(count)) for tenant_id, count in db.execute(query)]


def tenant_page(db: Session, settings: Settings, tenant: Tenant) -> TenantPage:
    connections = list(db.scalars(select(Connection).where(Connection.tenant_id == tenant.id)
                                  .order_by(Connection.created_at.desc())))  # fmt: skip
    ids = [c.id for c in connections]
    calendars = calendars_by_connection(db, ids)
    synced = _synced_each_way(db, ids)
    lines = [ConnectionLine(c, _provider_name(settings, c.provider),
                            [_calendar_line(db, cal) for cal in calendars[c.id]],
                            **synced.get(c.id, {})) for c in connections]  # fmt: skip
    names = {cal.id: cal.name or cal.remote_id for group in calendars.values() for cal in group}
    return TenantPage(tenant, lines, _recent_runs(db, ids), _letters(db, ids),
                      _conflicts(db, ids), names)  # fmt: skip


def _provider_name(settings: Settings, system: str) -> str:
    try:
        return registry.entry(system, settings).listing.name
    except registry.UnknownProvider:
        return system


def _calendar_line(db: Session, calendar: ExternalCalendar) -> CalendarLine:
    latest = select(SyncRun).where(SyncRun.calendar_id == calendar.id).order_by(
        SyncRun.started_at.desc()).limit(1)  # fmt: skip
    good = latest.where(SyncRun.status == RunStatus.SUCCEEDED, SyncRun.lag_ms.is_not(None))
    last_good = db.scalar(good)
    return CalendarLine(calendar, db.scalar(latest), last_good.lag_ms if last_good else None)


def _synced_each_way(db: Session, connection_ids: list[str]) -> dict[str, dict[str, int]]:
    """Pairs with both events present, by where they started: Wix (sessions exported) or
    the external calendar (events imported as busy blocks)."""
    query = (select(Link.connection_id, Link.origin, func.count())
             .where(Link.connection_id.in_(connection_ids), Link.tombstone.is_(False),
                    Link.wix_event_id.is_not(None), Link.external_event_id.is_not(None))
             .group_by(Link.connection_id, Link.origin))  # fmt: skip
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for connection_id, origin, count in db.execute(query):
        counts[connection_id]["exported" if origin is Side.WIX else "imported"] = int(count)
    return counts


def _recent_runs(db: Session, connection_ids: list[str]) -> list[SyncRun]:
    query = (select(SyncRun).where(SyncRun.connection_id.in_(connection_ids))
             .order_by(SyncRun.started_at.desc()).limit(RECENT_RUNS))  # fmt: skip
    return list(db.scalars(query))


def _letters(db: Session, connection_ids: list[str]) -> list[DeadLetter]:
    query = (select(DeadLetter).where(DeadLetter.connection_id.in_(connection_ids))
             .order_by(DeadLetter.created_at.desc()).limit(LISTED))  # fmt: skip
    return list(db.scalars(query))


def _conflicts(db: Session, connection_ids: list[str]) -> list[Conflict]:
    query = (select(Conflict).where(Conflict.connection_id.in_(connection_ids),
                                    Conflict.status.in_(TO_LOOK_AT))
             .order_by(Conflict.decided_at.desc()).limit(LISTED))  # fmt: skip
    return list(db.scalars(query))
