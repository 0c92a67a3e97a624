"""Conflicts (calsync addition): list a connection's, read one, resolve one.

A conflict is a field edited on both sides since the last sync; the connection's policy
picked a winner and both sides got its value. Resolving keeps the winner (the conflict is
acknowledged) or the other side: then a worker makes the losing value the agreed one and
writes it to both sides (`tasks.resolution`), after this request's commit.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import Caller, CallerDep
from api.errors import conflict as refused
from api.errors import responses
from api.external_calendars.common import rfc3339, tenant_connection
from api.external_calendars.ids import CONFLICT, CONNECTION, ConflictId, ConnectionId
from api.external_calendars.keyset import page, position
from api.external_calendars.owned import owned
from api.external_calendars.paging import DEFAULT_LIMIT, Cursor, Limit
from api.external_calendars.runs import remote_ids, run_out
from api.external_calendars.schema import (
    ConflictDetail,
    ConflictOut,
    ConflictResponse,
    ConflictStatusValue,
    KeepChoice,
    ListConflictsResponse,
    ResolveConflictRequest,
    SideValue,
)
from api.handover import broker_down
from models import Conflict, ConflictStatus, SyncRun
from models.db import session_scope
from tasks.enqueue import request_conflict_resolution

router = APIRouter()
DELETED = "deleted"  # the field of an edit that met a deletion (`sync.merge.DELETED`)
OPEN = (ConflictStatus.OPEN, ConflictStatus.RESOLVING)  # a choice may still be made


@router.get(
    f"{CONNECTION}/conflicts",
    summary="List Conflicts (calsync addition)",
    description="The connection's conflicts, newest first, 100 a page by default; `status` "
    "narrows them down (`OPEN`: not yet looked at).",
    response_model=ListConflictsResponse,
    responses=responses(400, 401, 403, 404),
)
def list_conflicts(
    connection_id: ConnectionId, caller: CallerDep, request: Request,
    status: Annotated[ConflictStatusValue | None, Query()] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> ListConflictsResponse:  # fmt: skip
    at = position(cursor, status.value if status else None)
    with session_scope(request.app.state.engine) as db:
        tenant_connection(db, caller, connection_id)
        query = select(Conflict).where(Conflict.connection_id == connection_id)
        if at.status is not None:
            query = query.where(Conflict.status == at.status)
        rows, paging = page(db, query, Conflict.decided_at, Conflict.id, at, limit)
        return ListConflictsResponse(conflicts=[conflict_out(r) for r in rows],
                                     pagingMetadata=paging)  # fmt: skip


@router.get(
    CONFLICT,
    summary="Get Conflict (calsync addition)",
    description="The values the base, Wix and the external calendar had, the policy, the "
    "winner, when, and the run that decided it.",
    response_model=ConflictResponse,
    responses=responses(400, 401, 403, 404),
)
def get_conflict(conflict_id: ConflictId, caller: CallerDep, request: Request
                 ) -> ConflictResponse:  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        row = tenant_conflict(db, caller, conflict_id)
        return ConflictResponse(conflict=conflict_detail(db, row))


@router.post(
    f"{CONFLICT}:resolve",
    summary="Resolve Conflict (calsync addition)",
    description="`keep: WINNER` acknowledges the policy's decision. Keeping the other side "
    "(`WIX` or `EXTERNAL`) has a worker write its value to both sides: the conflict is "
    "`RESOLVING`, then `RESOLVED` (or `SUPERSEDED` if the field changed again meanwhile). "
    "409 `CONFLICT_CLOSED` when already closed otherwise; 409 `NOT_REVERSIBLE` for keeping "
    "the other side of an edit that met a deletion, or of events that are gone.",
    response_model=ConflictResponse,
    responses=responses(400, 401, 403, 404, 409, 503),
)
def resolve_conflict(conflict_id: ConflictId, body: ResolveConflictRequest, caller: CallerDep,
                     request: Request) -> ConflictResponse:  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        row = tenant_conflict(db, caller, conflict_id, lock=True)
        row.status = wanted = outcome(row, body.keep)
    if wanted is ConflictStatus.RESOLVING and not request_conflict_resolution(conflict_id):
        raise broker_down()
    return get_conflict(conflict_id, caller, request)


def outcome(row: Conflict, keep: KeepChoice) -> ConflictStatus:
    """The status the choice leads to. Asking again for what was done changes nothing; 409
    when the conflict was closed the other way, or the losing side cannot be kept."""
    keeps_winner = keep is KeepChoice.WINNER or keep.value == row.winner.name
    wanted, done = ((ConflictStatus.ACKNOWLEDGED,) * 2 if keeps_winner
                    else (ConflictStatus.RESOLVING, ConflictStatus.RESOLVED))  # fmt: skip
    if row.status is done:
        return done
    if row.status not in OPEN:
        raise refused(f"the conflict is {row.status.value} already", "conflictId",
                      code="CONFLICT_CLOSED")  # fmt: skip
    if not keeps_winner and (row.field == DELETED or row.link_id is None):
        raise refused("only the winner can be kept: the events this conflict was about "
                      "were deleted", "keep", code="NOT_REVERSIBLE")  # fmt: skip
    return wanted


def tenant_conflict(db: Session, caller: Caller, conflict_id: str, *, lock: bool = False
                    ) -> Conflict:  # fmt: skip
    return owned(db, caller, Conflict, conflict_id, "conflictId", "conflict", lock=lock)


def conflict_out(row: Conflict) -> ConflictOut:
    return ConflictOut(
        id=row.id, connectionId=row.connection_id, field=row.field, baseValue=row.base_value,
        wixValue=row.wix_value, externalValue=row.external_value, policy=row.policy,
        winner=SideValue(row.winner.name), status=ConflictStatusValue(row.status.value),
        decidedDate=rfc3339(row.decided_at) or "", syncRunId=row.sync_run_id,
    )  # fmt: skip


def conflict_detail(db: Session, row: Conflict) -> ConflictDetail:
    run = None if row.sync_run_id is None else db.get(SyncRun, row.sync_run_id)
    shown = None if run is None else run_out(run, remote_ids(db, row.connection_id))
    return ConflictDetail(**conflict_out(row).model_dump(), syncRun=shown)
