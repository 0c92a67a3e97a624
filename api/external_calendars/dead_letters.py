"""Dead letters (calsync addition): a connection's changes that keep failing, and retrying
one. After `CALSYNC_DEAD_LETTER_AFTER` failures a change is parked: runs skip it, so one bad
event cannot hold up its calendar. Retrying releases it and asks for a full sync of its
calendar; one more failure parks it again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import Caller, CallerDep
from api.errors import responses
from api.external_calendars.common import rfc3339, tenant_connection
from api.external_calendars.ids import CONNECTION, DEAD_LETTER, ConnectionId, DeadLetterId
from api.external_calendars.keyset import page, position
from api.external_calendars.owned import owned
from api.external_calendars.paging import DEFAULT_LIMIT, Cursor, Limit
from api.external_calendars.runs import remote_ids
from api.external_calendars.schema import (
    DeadLetterOut,
    DeadLetterResponse,
    DeadLetterStatusValue,
    ListDeadLettersResponse,
)
from api.handover import broker_down, sync_now
from models import DeadLetter
from models.db import session_scope

router = APIRouter()


@router.get(
    f"{CONNECTION}/dead-letters",
    summary="List Dead Letters (calsync addition)",
    description="The connection's failing and parked changes, newest first, 100 a page by "
    "default; `status` narrows them down.",
    response_model=ListDeadLettersResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403, 404),
)
def list_dead_letters(
    connection_id: ConnectionId, caller: CallerDep, request: Request,
    status: Annotated[DeadLetterStatusValue | None, Query()] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> ListDeadLettersResponse:  # fmt: skip
    at = position(cursor, status.value if status else None)
    with session_scope(request.app.state.engine) as db:
        tenant_connection(db, caller, connection_id)
        remote = remote_ids(db, connection_id)
        query = select(DeadLetter).where(DeadLetter.connection_id == connection_id)
        if at.status is not None:
            query = query.where(DeadLetter.status == at.status)
        rows, paging = page(db, query, DeadLetter.created_at, DeadLetter.id, at, limit)
        return ListDeadLettersResponse(deadLetters=[letter_out(r, remote) for r in rows],
                                       pagingMetadata=paging)  # fmt: skip


@router.post(
    f"{DEAD_LETTER}:retry",
    summary="Retry Dead Letter (calsync addition)",
    description="The change is tried again by a full sync of its calendar, asked for now.",
    response_model=DeadLetterResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403, 404, 503),
)
def retry_dead_letter(letter_id: DeadLetterId, caller: CallerDep, request: Request
                      ) -> DeadLetterResponse:  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        letter = tenant_letter(db, caller, letter_id, lock=True)
        letter.release(request.app.state.settings.dead_letter_after)
        calendar_id = letter.calendar_id
    if not sync_now(request, [calendar_id], "retry"):
        raise broker_down()
    with session_scope(request.app.state.engine) as db:
        letter = tenant_letter(db, caller, letter_id)
        shown = letter_out(letter, remote_ids(db, letter.connection_id))
        return DeadLetterResponse(deadLetter=shown)


def tenant_letter(db: Session, caller: Caller, letter_id: str, *, lock: bool = False
                  ) -> DeadLetter:  # fmt: skip
    return owned(db, caller, DeadLetter, letter_id, "deadLetterId", "dead letter", lock=lock)


def letter_out(letter: DeadLetter, remote_ids: dict[str, str]) -> DeadLetterOut:
    return DeadLetterOut(
        id=letter.id, connectionId=letter.connection_id,
        calendarId=remote_ids.get(letter.calendar_id), changeKey=letter.change_key,
        action={str(k): str(v) for k, v in (letter.action or {}).items()}, error=letter.error,
        attempts=letter.attempts, status=DeadLetterStatusValue(letter.status.value),
        createdDate=rfc3339(letter.created_at) or "", updatedDate=rfc3339(letter.updated_at) or "",
        parkedDate=rfc3339(letter.parked_at),
    )  # fmt: skip
