"""`GET connections/{id}/sync-runs` (calsync addition): the connection's sync runs, newest
first, a page at a time: what started each, what it did (its actions counted by kind, side,
reason code and outcome), how long it took and its lag, and how far a large one has got."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import CallerDep
from api.errors import responses
from api.external_calendars.common import calendars_of, rfc3339, tenant_connection
from api.external_calendars.ids import CONNECTION, ConnectionId
from api.external_calendars.keyset import page, position
from api.external_calendars.paging import DEFAULT_LIMIT, Cursor, Limit
from api.external_calendars.schema import ListSyncRunsResponse, RunActionCount, SyncRunOut
from models import SyncRun
from models.db import session_scope

router = APIRouter()


@router.get(
    f"{CONNECTION}/sync-runs",
    summary="List Sync Runs (calsync addition)",
    description="The connection's sync runs (each a sync of one calendar, or its clean-up), "
    "newest first, 100 a page by default.",
    response_model=ListSyncRunsResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403, 404),
)
def list_sync_runs(connection_id: ConnectionId, caller: CallerDep, request: Request,
                   limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
                   ) -> ListSyncRunsResponse:  # fmt: skip
    at = position(cursor, None)
    with session_scope(request.app.state.engine) as db:
        tenant_connection(db, caller, connection_id)
        remote = remote_ids(db, connection_id)
        query = select(SyncRun).where(SyncRun.connection_id == connection_id)
        rows, paging = page(db, query, SyncRun.started_at, SyncRun.id, at, limit)
        return ListSyncRunsResponse(syncRuns=[run_out(r, remote) for r in rows],
                                    pagingMetadata=paging)  # fmt: skip


def remote_ids(db: Session, connection_id: str) -> dict[str, str]:
    """The connection's calendars: calsync's id to the provider's, which the API shows."""
    return {c.id: c.remote_id for c in calendars_of(db, connection_id)}


def run_out(run: SyncRun, remote_ids: dict[str, str]) -> SyncRunOut:
    return SyncRunOut(
        id=run.id, calendarId=remote_ids.get(run.calendar_id or ""), kind=run.kind,
        trigger=run.trigger, status=run.status.value, startedDate=rfc3339(run.started_at) or "",
        finishedDate=rfc3339(run.finished_at), created=run.created, updated=run.updated,
        deleted=run.deleted, conflicts=run.conflicts, skipped=run.skipped, errors=run.errors,
        apiCalls=run.api_calls, durationMs=run.duration_ms, lagMs=run.lag_ms, error=run.error,
        planned=run.planned, progress=run.progress,
        actions=None if run.actions is None else [RunActionCount(**a) for a in run.actions],
    )  # fmt: skip
