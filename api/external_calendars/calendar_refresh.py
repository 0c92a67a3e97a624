"""`POST connections/{id}/calendars:refresh` (calsync addition): list the account's calendars
again now, rather than at the next full reconciliation. A worker does it
(`tasks.calendar_list`); the answer is the calendars as calsync knows them until then."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.auth import CallerDep
from api.errors import conflict, responses
from api.external_calendars.common import tenant_connection
from api.external_calendars.connections import ConnectionId, list_calendars
from api.external_calendars.schema import ListCalendarsResponse
from api.handover import broker_down
from models import ConnectionStatus
from models.db import session_scope
from tasks.enqueue import request_calendar_refresh

router = APIRouter()


@router.post(
    "/connections/{connectionId}/calendars:refresh",
    summary="Refresh Calendars (calsync addition)",
    description="A worker lists the account's calendars again: new ones appear (syncing "
    "nothing until the sync configuration names them), names and read-only flags follow the "
    "account, and a calendar the account no longer has is removed, unless it syncs or holds "
    "copies: that one stays, marked gone. The answer lists the calendars as they are before "
    "the refresh. Full reconciliations refresh them too.",
    status_code=202,
    response_model=ListCalendarsResponse,
    responses=responses(400, 401, 403, 404, 409, 503),
)
def refresh_calendars(connection_id: ConnectionId, caller: CallerDep, request: Request
                      ) -> ListCalendarsResponse:  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        connection = tenant_connection(db, caller, connection_id)
        if connection.status is ConnectionStatus.DISCONNECTED:
            raise conflict("the connection is disconnected", "connectionId", code="DISCONNECTED")
    if not request_calendar_refresh(connection_id):
        raise broker_down()
    return list_calendars(connection_id, caller, request)
