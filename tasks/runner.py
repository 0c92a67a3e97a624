"""One sync run of one calendar: pull both sides, plan, apply, record.

Order matters for "nothing lost, nothing doubled": links are saved after every write (by the
link store), the cursors advance and the covered notifications close only when the whole
plan went through, and the run's record is written whatever happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import (
    INACTIVE,
    PRIMARY_PLACEHOLDER,
    Connection,
    ConnectionStatus,
    ExternalCalendar,
    RunStatus,
    SyncRun,
    Tenant,
    TenantStatus,
)
from models import Conflict as ConflictRow
from models import Link as LinkRow
from models import Side as RowSide
from models.notifications import close_echoes, complete, has_open
from models.types import utcnow
from providers.errors import ProviderError, TransientError
from sync.actions import Action, Create, Delete, PlanResult, RemoveOrphan, Update
from sync.codec import value_to_json
from sync.merge import Conflict
from sync.planner import plan
from sync.policy import ConnectionPolicy
from sync.side import Side
from sync.snapshot import SideSnapshot
from tasks import unreadable
from tasks.apply import Applied, apply_plan, read_side
from tasks.breaks import after_run, announce
from tasks.context import WorkerContext
from tasks.dead_letters import DeadLetters
from tasks.link_store import BeatingLinkStore, DatabaseLinkStore
from tasks.policy import policy_for
from tasks.progress import CountingLinkStore, RunProgress
from tasks.run_summary import RunReport, planned_actions, report
from tasks.sides import sides_for

# Runs asked for by notifications; when an earlier run already covered every one of them,
# there is nothing to pull and the run is skipped.
NOTIFIED = ("webhook", "follow_up")


@dataclass(frozen=True)
class RunOutcome:
    run_id: str | None
    applied: int
    failed: int
    stopped_by: ProviderError | None = None
    skipped: bool = False


def run_calendar(
    context: WorkerContext,
    calendar_id: str,
    trigger: str,
    full: bool = False,
    heartbeat: Callable[[], None] = lambda: None,
) -> RunOutcome:
    started, clock = utcnow(), time.monotonic()
    with context.sessions() as db, db.begin():
        calendar = db.get(ExternalCalendar, calendar_id)
        connection = None if calendar is None else db.get(Connection, calendar.connection_id)
        if calendar is None or connection is None or not _active(db, connection):
            return RunOutcome(None, 0, 0, skipped=True)
        if calendar.remote_id == PRIMARY_PLACEHOLDER:  # the first sync learns it, then runs
            return RunOutcome(None, 0, 0, skipped=True)
        if trigger in NOTIFIED:
            close_echoes(db, calendar.id)
            if not has_open(db, calendar.id):
                return RunOutcome(None, 0, 0, skipped=True)
        run = SyncRun(connection_id=connection.id, calendar_id=calendar.id, trigger=trigger,
                      kind="full" if full else "incremental")  # fmt: skip
        db.add(run)
        _advance(db, connection.id, (ConnectionStatus.CONNECTED, ConnectionStatus.SYNCED),
                 ConnectionStatus.SYNC_IN_PROGRESS)  # fmt: skip
        db.flush()
        run_id = run.id
        db.expunge_all()
    links = DatabaseLinkStore(context.sessions, connection.id, calendar.id)
    dead = DeadLetters(context, connection.id, calendar.id)
    sides = None
    try:
        sides = sides_for(context, connection, calendar)
        providers = sides.providers
        wix, wix_next = read_side(
            providers[Side.WIX], Side.WIX, None if full else calendar.wix_cursor
        )
        ext, ext_next = read_side(
            providers[Side.EXTERNAL], Side.EXTERNAL, None if full else calendar.cursor
        )
        wix, ext = unreadable.settle(links.all, providers, wix, ext)
        result = plan_run(links, wix, ext, policy_for(connection, calendar))
        progress = RunProgress(context, run_id, planned_actions(result, dead.is_parked))
        saving = CountingLinkStore(BeatingLinkStore(links, heartbeat), progress)
        applied = apply_plan(result, providers, saving, skip=dead.is_parked,
                             on_failure=dead.record)  # fmt: skip
    except ProviderError as error:
        _finish(context, run_id, clock, sides.calls if sides else 0, error=error)
        return RunOutcome(run_id, 0, 0, stopped_by=error)
    finally:
        if sides is not None:
            sides.close()
    dead.clear_succeeded(applied.done)
    # A failed action must meet the same change again next run: only a run in which every
    # action went through may move the cursors on.
    complete_run = applied.stopped_by is None and not applied.failed and not result.errors
    _finish(context, run_id, clock, sides.calls, result=result, applied=applied,
            summary=report(result, applied, dead.is_parked), read=[wix, ext],
            started=started if complete_run else None,
            cursors=(wix_next, ext_next) if complete_run else None)  # fmt: skip
    return RunOutcome(run_id, len(applied.done), len(applied.failed), _retry_reason(applied))


def plan_run(links: DatabaseLinkStore, wix: SideSnapshot, external: SideSnapshot,
             policy: ConnectionPolicy) -> PlanResult:  # fmt: skip
    """Plan with every link when a side listed everything, else only with the links the
    changes concern (`sync.relevance`): an incremental run reads what it changes."""
    if wix.complete or external.complete:
        return plan(wix, external, links.all(refresh_keys=True), policy)
    # The mass-deletion guard weighs deletions against every link of the calendar: counted
    # only when a side reports one, since counting grows with the calendar.
    deletes = any(item.deleted for side in (wix, external) for item in side.items)
    linked = links.linked() if deletes else None
    return plan(wix, external, links.related(wix, external), policy, linked=linked)


def _active(db: Session, connection: Connection) -> bool:
    """Syncing: the connection works and its Wix site still has the app installed."""
    tenant = db.get(Tenant, connection.tenant_id)
    return (
        connection.status not in INACTIVE
        and tenant is not None
        and (tenant.status is TenantStatus.ACTIVE)
    )


def _retry_reason(applied: Applied) -> ProviderError | None:
    """What the task should retry for: the error that stopped the run, else the first
    transient failure of a single write (a 5xx), which is worth another try soon."""
    if applied.stopped_by is not None:
        return applied.stopped_by
    transient = (e for _, e in applied.failed if isinstance(e, TransientError))
    return next(transient, None)


def _counts(actions: list[Action]) -> dict[str, int]:
    return {
        "created": sum(isinstance(a, Create) for a in actions),
        "updated": sum(isinstance(a, Update) for a in actions),
        "deleted": sum(isinstance(a, Delete | RemoveOrphan) for a in actions),
    }


def _finish(
    context: WorkerContext,
    run_id: str,
    clock: float,
    api_calls: int,
    *,
    result: PlanResult | None = None,
    applied: Applied | None = None,
    summary: RunReport | None = None,
    error: ProviderError | None = None,
    started: datetime | None = None,
    cursors: tuple[str, str] | None = None,
    read: list[SideSnapshot] | None = None,
) -> None:
    with context.sessions() as db, db.begin():
        run = db.get(SyncRun, run_id)
        assert run is not None
        # The connection's row before the calendar's, the order the API locks them in (a
        # sync-config change): the other order deadlocks with it.
        connection = db.get(Connection, run.connection_id, with_for_update=True)
        calendar = db.get(ExternalCalendar, run.calendar_id)
        assert calendar is not None and connection is not None
        run.finished_at = utcnow()
        run.duration_ms = int((time.monotonic() - clock) * 1000)
        run.api_calls = api_calls
        if result is not None and applied is not None:
            _record_result(db, run, connection.id, result, applied)
        if read is not None:
            _note_unreadable(calendar, read, run.finished_at)
        if summary is not None:
            run.planned, run.progress = summary.planned, summary.applied
            run.actions = summary.actions
        stopped = error or (applied.stopped_by if applied else None)
        run.status = RunStatus.FAILED if stopped or run.error else RunStatus.SUCCEEDED
        if stopped is not None:
            run.error = f"{type(stopped).__name__}: {stopped}"
        if cursors is not None and started is not None:
            calendar.wix_cursor, calendar.cursor = cursors
            calendar.cursor_updated_at = calendar.last_synced_at = run.finished_at
            oldest = complete(db, calendar.id, started)
            if oldest is not None:
                run.lag_ms = int((run.finished_at - oldest).total_seconds() * 1000)
            _advance(db, connection.id, (ConnectionStatus.SYNC_IN_PROGRESS,),
                     ConnectionStatus.SYNCED)  # fmt: skip
            connection.last_synced_at = run.finished_at
        alert = after_run(db, connection, run.status, stopped, context.settings)
    announce(alert)


def _note_unreadable(calendar: ExternalCalendar, read: list[SideSnapshot], now: datetime
                     ) -> None:  # fmt: skip
    noted = unreadable.noted(calendar.unreadable, read, now)
    if noted != (calendar.unreadable or {}):  # written only when it changed
        calendar.unreadable = noted


def _advance(db: Session, connection_id: str, allowed: tuple[ConnectionStatus, ...],
             to: ConnectionStatus) -> None:  # fmt: skip
    """Move the connection to `to` only from the states `allowed`, in one statement: a
    disconnect or an error that the API or another task committed meanwhile stands (a
    read-then-write would overwrite it, and the disconnect's clean-up would then be skipped)."""
    db.execute(update(Connection).where(Connection.id == connection_id,
                                        Connection.status.in_(allowed)).values(status=to),
               execution_options={"synchronize_session": False})  # fmt: skip


def _record_result(
    db: Session, run: SyncRun, connection_id: str, result: PlanResult, applied: Applied
) -> None:
    counts = _counts(applied.done)
    run.created, run.updated, run.deleted = counts["created"], counts["updated"], counts["deleted"]
    run.conflicts = len(result.conflicts)
    run.skipped = len(result.skipped)
    run.errors = len(applied.failed) + len(result.errors)
    if result.errors:
        run.error = "; ".join(str(e) for e in result.errors)
    if result.conflicts:
        kept = _kept_links(db, {c.link_id for c in result.conflicts})
        db.add_all(_conflict_row(connection_id, run.id, c, kept) for c in result.conflicts)


def _kept_links(db: Session, link_ids: set[str]) -> set[str]:
    """The links still there after the run (a deletion may have forgotten its pair): a
    conflict names its link, so that keeping the losing side can be done later."""
    return set(db.scalars(select(LinkRow.id).where(LinkRow.id.in_(link_ids))))


def _conflict_row(connection_id: str, run_id: str, conflict: Conflict, kept: set[str]
                  ) -> ConflictRow:  # fmt: skip
    return ConflictRow(
        connection_id=connection_id, sync_run_id=run_id, field=conflict.field,
        link_id=conflict.link_id if conflict.link_id in kept else None,
        policy=conflict.policy.value if conflict.policy else conflict.reason.value,
        winner=RowSide(conflict.winner.value), base_value=value_to_json(conflict.base_value),
        wix_value=value_to_json(conflict.wix_value),
        external_value=value_to_json(conflict.external_value),
    )  # fmt: skip
