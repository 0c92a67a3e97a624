"""A connection's life after the API changed it: a new sync configuration, and disconnecting.

- `reconfigure`: a calendar dropped from import loses its busy blocks on the Wix schedule, a
  calendar that stops receiving sessions loses the copies calsync put there; then the affected
  calendars get a full sync (a new export target receives the sessions). The planner itself
  never removes copies when a direction is switched off (it only stops writing that way), so the
  removal is done here. A removed block leaves its link as a tombstone (`Link.without_copy`):
  if import is switched on again, the planner writes the block anew under a fresh key. A
  removed session copy takes its link along (the session may go to another calendar next).
- `first_sync`: for accounts connected by OAuth whose primary calendar id is not known at connect
  time (Microsoft: the API stores `primary`), read the account's calendars, fill in the real id,
  then ask for the first full sync.
- `disconnect`: push channels stopped, every copy removed from both sides (sessions exported to
  the external calendar, blocks imported into Wix) and the links forgotten, credentials wiped.
  The API marked the connection DISCONNECTED already, so no sync run starts meanwhile; a run
  still going holds the calendar's lock, which the clean-up waits for.

Both are idempotent: a retry (after a 5xx, a lock held, a worker lost) redoes only what is left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Task, shared_task
from kombu.exceptions import OperationalError
from sqlalchemy import select

from models import (
    PRIMARY_PLACEHOLDER,
    Connection,
    ConnectionStatus,
    ErrorReason,
    ExternalCalendar,
    Provider,
    RunStatus,
    SyncRun,
)
from models.types import utcnow
from providers.base import (
    CalendarInfo,
    PermanentError,
    PermanentReason,
    ProviderError,
    TransientError,
)
from providers.caldav import CalDAVAccount
from sync.link import Link
from sync.side import Side
from tasks.accounts import caldav_account, microsoft_account
from tasks.backoff import retry_delay
from tasks.calendar_sync import ERROR_REASONS
from tasks.channels import open_channels, open_connection_channels, stop_connection_channels
from tasks.context import WorkerContext, worker_context
from tasks.enqueue import request_sync
from tasks.link_store import DatabaseLinkStore
from tasks.registry import NoProvider, providers_for

log = logging.getLogger(__name__)
DEDICATED_ID = "dedicatedCalendarId"
DEDICATED_NAME = "Wix Bookings"
BUSY_RETRY_SECONDS = 1.0


class CalendarBusy(Exception):
    """A sync run holds the calendar's lock; try again in a moment."""


@dataclass
class Removal:
    deleted: int = 0
    # Sides calsync can no longer write (a revoked token): their copies stay behind.
    refused: dict[Side, PermanentError] = field(default_factory=dict)


# -- enqueueing (what the API calls after its commit) --------------------------------------------


def request_reconfigure(
    connection_id: str, withdraw_imports: list[str], withdraw_exports: list[str],
    resync: list[str], create_dedicated: bool = False,
) -> bool:  # fmt: skip
    """False when the broker could not be reached (the caller says so; a repeat re-enqueues)."""
    args = [connection_id, withdraw_imports, withdraw_exports, resync, create_dedicated]
    return _send(reconfigure, args)


def request_disconnect(connection_id: str) -> bool:
    return _send(disconnect, [connection_id])


def request_first_sync(connection_id: str) -> bool:
    return _send(first_sync, [connection_id])


def request_channels(connection_id: str) -> bool:
    return _send(open_channels, [connection_id])


def _send(task: Any, args: list[Any]) -> bool:
    try:
        task.apply_async(args=args, retry=False)
    except (OperationalError, redis.RedisError):
        log.warning("broker unreachable", extra={"task": task.name})
        return False
    return True


# -- tasks ------------------------------------------------------------------------------------


@shared_task(bind=True, name="tasks.connections.reconfigure", max_retries=None)
def reconfigure(
    self: Task, connection_id: str, withdraw_imports: list[str], withdraw_exports: list[str],
    resync: list[str], create_dedicated: bool = False,
) -> dict[str, Any]:  # fmt: skip
    context = worker_context()
    try:
        return apply_config_change(context, connection_id, withdraw_imports, withdraw_exports,
                                   resync, create_dedicated)  # fmt: skip
    except (CalendarBusy, TransientError) as error:
        raise self.retry(countdown=_delay(self, error), exc=error) from None


@shared_task(bind=True, name="tasks.connections.disconnect", max_retries=None)
def disconnect(self: Task, connection_id: str) -> dict[str, Any]:
    context = worker_context()
    try:
        return clean_up(context, connection_id)
    except (CalendarBusy, TransientError) as error:
        raise self.retry(countdown=_delay(self, error), exc=error) from None


@shared_task(bind=True, name="tasks.connections.first_sync", max_retries=None)
def first_sync(self: Task, connection_id: str) -> dict[str, Any]:
    context = worker_context()
    try:
        return start_syncing(context, connection_id)
    except TransientError as error:
        raise self.retry(countdown=_delay(self, error), exc=error) from None


def _delay(task: Task, error: Exception) -> float:
    """Soon while a sync run holds the lock (runs are short), backing off if it stays held."""
    cap = worker_context().settings.max_retry_delay
    retry_after = error.retry_after if isinstance(error, TransientError) else None
    return retry_delay(task.request.retries, retry_after, cap=cap, base=BUSY_RETRY_SECONDS)


# -- the first sync ---------------------------------------------------------------------------


def start_syncing(context: WorkerContext, connection_id: str) -> dict[str, Any]:
    """Resolve the primary calendar's placeholder id (and record the account's other calendars,
    for List Calendars), then a full sync of each synced calendar."""
    with context.sessions() as db:
        connection = db.get(Connection, connection_id)
        if connection is None or connection.status in (_GONE, ConnectionStatus.ERROR):
            return {"skipped": True}
        unresolved = db.scalar(select(ExternalCalendar.id).where(
            ExternalCalendar.connection_id == connection_id,
            ExternalCalendar.remote_id == PRIMARY_PLACEHOLDER,
        ))  # fmt: skip
        db.expunge_all()
    if unresolved is not None:
        try:
            listed = _calendar_list(context, connection)
        except PermanentError as error:
            reason = ERROR_REASONS.get(error.reason, ErrorReason.TOKEN_REVOKED)
            _mark_error(context, connection_id, str(error), reason)
            return {"error": reason.value}
        primary = next((c for c in listed if c.primary), None)
        if primary is None:
            _mark_error(context, connection_id, "the account shows no primary calendar",
                        ErrorReason.EXTERNAL_CALENDAR_DELETED)  # fmt: skip
            return {"error": ErrorReason.EXTERNAL_CALENDAR_DELETED.value}
        _record_calendars(context, connection_id, unresolved, primary, listed)
    with context.sessions() as db:
        synced = list(db.scalars(select(ExternalCalendar.id).where(
            ExternalCalendar.connection_id == connection_id,
            ExternalCalendar.synced,
        )))  # fmt: skip
    for calendar_id in synced:
        request_sync(context, calendar_id, "connect", full=True)
    return {"synced": len(synced)}


def _calendar_list(context: WorkerContext, connection: Connection) -> list[CalendarInfo]:
    if connection.provider is not Provider.MICROSOFT:
        raise PermanentError(PermanentReason.FORBIDDEN, "no calendar list for this provider")
    account = microsoft_account(context, connection)
    try:
        return account.list_calendars()
    finally:
        account.close()


def _record_calendars(
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


# -- a new sync configuration -----------------------------------------------------------------


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
    synced = [c for c in dict.fromkeys(resync) if _still_active(context, c)]
    for calendar_id in synced:
        request_sync(context, calendar_id, "resync", full=True)
    return {
        "removed": removed,
        "resynced": len(synced),
        "channels": _open_channels(context, connection_id),
    }


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
        if calendar is None or connection is None or connection.status is _GONE:
            return 0
        still_off = not calendar.import_enabled if side is Side.WIX else not calendar.export_target
        db.expunge_all()
    if not still_off:
        return 0
    # Exported links go with their copies: should this calendar receive sessions again, they
    # are copied afresh rather than revived from tombstones of copies deleted long ago.
    forget = side is Side.EXTERNAL
    with _locked(context, calendar_id) as beat:
        removal = remove_copies(context, connection, calendar, {side}, forget=forget, beat=beat)
    refusal = removal.refused.get(side)
    if refusal is not None:
        reason = ERROR_REASONS.get(refusal.reason, ErrorReason.TOKEN_REVOKED)
        _mark_error(context, connection_id, str(refusal), reason)
    return removal.deleted


_GONE = ConnectionStatus.DISCONNECTED


def _still_active(context: WorkerContext, calendar_id: str) -> bool:
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
    try:
        info = create_calendar(context, connection)
    except (ProviderError, NotImplementedError) as error:
        _mark_error(context, connection_id, f"could not create the calendar: {error}",
                    ErrorReason.EXTERNAL_CALENDAR_CREATION_FAILED)  # fmt: skip
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


def create_calendar(context: WorkerContext, connection: Connection) -> CalendarInfo:
    """A new calendar in the connection's account, for the schedule's sessions."""
    if connection.provider is Provider.LOCAL and connection.server_url:
        name = f"calsync-{connection.id[:12]}"
        response = context.http.post(f"{connection.server_url.rstrip('/')}/_store/calendars",
                                     json={"name": name})  # fmt: skip
        if response.status_code >= 400:
            raise TransientError(f"the store answered {response.status_code}")
        return CalendarInfo(remote_id=name, name=DEDICATED_NAME, read_only=False)
    if connection.provider is Provider.MICROSOFT:
        outlook = microsoft_account(context, connection)
        try:
            return outlook.create_calendar(DEDICATED_NAME)
        finally:
            outlook.close()
    account = _caldav_account(context, connection)
    try:  # keyed by the connection: two connections of one account get a calendar each
        return account.create_calendar(DEDICATED_NAME, key=connection.id)
    finally:
        account.close()


def _caldav_account(context: WorkerContext, connection: Connection) -> CalDAVAccount:
    if connection.provider not in (Provider.CALDAV, Provider.APPLE):
        raise NotImplementedError(f"{connection.provider.value} cannot create calendars yet")
    return caldav_account(context, connection)


# -- disconnecting ----------------------------------------------------------------------------


def clean_up(context: WorkerContext, connection_id: str) -> dict[str, Any]:
    with context.sessions() as db, db.begin():
        connection = db.get(Connection, connection_id)
        if connection is None or connection.status is not _GONE:
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
        with _locked(context, calendar.id) as beat:
            removal = remove_copies(context, connection, calendar, {Side.WIX, Side.EXTERNAL},
                                    forget=True, final=True, beat=beat)  # fmt: skip
        total.deleted += removal.deleted
        total.refused.update(removal.refused)
    _finish_disconnect(context, connection_id, run_id, total, clock)
    return {"deleted": total.deleted, "refused": sorted(s.value for s in total.refused)}


def _finish_disconnect(context: WorkerContext, connection_id: str, run_id: str, total: Removal,
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
        if connection.status is _GONE:
            connection.credentials = None  # nothing may act for the account any more
            connection.token_expires_at = None


# -- removing copies --------------------------------------------------------------------------


def remove_copies(
    context: WorkerContext, connection: Connection, calendar: ExternalCalendar, sides: set[Side],
    *, forget: bool, final: bool = False, beat: Any = None,
) -> Removal:  # fmt: skip
    """Delete every copy calsync made on `sides` for this calendar (instances before their
    series). `forget`: drop the links, else keep them as tombstones. `final` (disconnect):
    drop even the links whose copy a side refused to delete; otherwise those stay, to be
    tried again."""
    removal = Removal()
    try:
        providers, _ = providers_for(context, connection, calendar)
    except NoProvider as error:
        refusal = PermanentError(PermanentReason.FORBIDDEN, str(error))
        return Removal(refused=dict.fromkeys(sides, refusal))
    store = DatabaseLinkStore(context.sessions, connection.id, calendar.id)
    for link in sorted(store.all(), key=lambda k: (not k.base.is_instance, k.link_id)):
        copy_side = link.origin.other
        if copy_side not in sides:
            continue
        copy_id = link.id_on(copy_side)
        if copy_id is not None and copy_side not in removal.refused:
            try:
                providers[copy_side].delete(copy_id, None)  # ours: no edit there is kept
                removal.deleted += 1
            except PermanentError as error:
                removal.refused[copy_side] = error
        if final or copy_id is None or copy_side not in removal.refused:
            _settle(store, link, copy_side, forget)
        if beat is not None:
            beat()
    return removal


def _settle(store: DatabaseLinkStore, link: Link, side: Side, forget: bool) -> None:
    if forget:
        store.forget(link.link_id)
    else:
        store.save(link.without_copy(side))


@contextmanager
def _locked(context: WorkerContext, calendar_id: str) -> Iterator[Any]:
    """The calendar's sync lock (one writer per calendar), extended while the work goes on."""
    token = context.gate.acquire(calendar_id)
    if token is None:
        raise CalendarBusy(calendar_id)
    interval, last = context.settings.calendar_lock_seconds / 3, [time.monotonic()]

    def beat() -> None:
        if time.monotonic() - last[0] >= interval:
            assert token is not None
            context.gate.extend(calendar_id, token)
            last[0] = time.monotonic()

    try:
        yield beat
    finally:
        # Not `release`: a dirty mark left by a notification stays for the next run.
        context.gate.abandon(calendar_id, token)


def _mark_error(context: WorkerContext, connection_id: str, message: str,
                reason: ErrorReason) -> None:  # fmt: skip
    with context.sessions() as db, db.begin():
        connection = db.get(Connection, connection_id)
        if connection is None or connection.status is _GONE:
            return
        connection.status, connection.error_reason = ConnectionStatus.ERROR, reason
        connection.error_message = message[:2000]
