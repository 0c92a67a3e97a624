"""calsync addition: set `externalCalendarOverrides`, the title and description the copies of a
schedule's sessions show in the staff member's calendar, on the whole schedule or on one
session. Wix's v1 Session and Schedule had the field; Calendar V3 has none, so calsync keeps
it in its own extendedFields namespace (docs/wix.md) and offers this to set it. A worker
writes it to Wix (`tasks.overrides`) and syncs the calendar receiving the sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import CallerDep
from api.errors import not_found, responses
from api.external_calendars.common import live_connection
from api.external_calendars.ids import SCHEDULE, SESSION, ScheduleId, SessionId
from api.external_calendars.schema import Text
from api.handover import broker_down
from models.db import session_scope
from tasks.enqueue import request_overrides

router = APIRouter()


class ExternalCalendarOverrides(BaseModel):
    title: Text | None = Field(None, max_length=200, description="Synced title; none: the "
                               "session's (or, on a session, the schedule's override)")  # fmt: skip
    description: Text | None = Field(None, max_length=5000, description="Synced description")


class OverridesRequest(BaseModel):
    """Replaces the overrides; `{}` removes them."""

    externalCalendarOverrides: ExternalCalendarOverrides


class OverridesResponse(BaseModel):
    externalCalendarOverrides: ExternalCalendarOverrides


_DESCRIPTION = (" (calsync addition). Accepted at once (202); a worker writes it to Wix and "
                "syncs the calendar receiving the sessions. The schedule must be one of the "
                "tenant's connected schedules.")  # fmt: skip
_ANSWERS: dict[str, Any] = {"status_code": 202, "response_model": OverridesResponse,
                            "response_model_exclude_none": True,
                            "responses": responses(400, 401, 403, 404, 503)}  # fmt: skip


@router.put(
    f"{SCHEDULE}/external-calendar-overrides",
    summary="Set a schedule's externalCalendarOverrides (calsync addition)",
    description="The title and description every session's copy shows, unless the session "
    "has its own" + _DESCRIPTION,
    **_ANSWERS,
)
def set_schedule_overrides(schedule_id: ScheduleId, body: OverridesRequest, caller: CallerDep,
                           request: Request) -> OverridesResponse:  # fmt: skip
    return _hand_over(request, caller, schedule_id, None, body)


@router.put(
    f"{SCHEDULE}{SESSION}/external-calendar-overrides",
    summary="Set a session's externalCalendarOverrides (calsync addition)",
    description="The title and description this session's copy shows, field by field before "
    "the schedule's" + _DESCRIPTION,
    **_ANSWERS,
)
def set_session_overrides(schedule_id: ScheduleId, session_id: SessionId, body: OverridesRequest,
                          caller: CallerDep, request: Request) -> OverridesResponse:  # fmt: skip
    return _hand_over(request, caller, schedule_id, session_id, body)


def _hand_over(request: Request, caller: CallerDep, schedule_id: str, session_id: str | None,
               body: OverridesRequest) -> OverridesResponse:  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        connection = live_connection(db, caller, schedule_id)
        if connection is None:
            raise not_found("scheduleId", "connected schedule")
        connection_id = connection.id
    wanted = body.externalCalendarOverrides
    if not request_overrides(connection_id, session_id, wanted.model_dump()):
        raise broker_down()
    return OverridesResponse(externalCalendarOverrides=wanted)
