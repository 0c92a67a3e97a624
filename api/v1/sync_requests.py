"""The older External Calendar Sync API (v1, Google only) under `/bookings/v1/externalCalendar`.

`POST sync` asks the calendar owner by email to approve (`tasks.mail`); the link leads to the
approval page (`api.v1.approval`), which starts Google's OAuth flow; the callback makes the
connection. A resource is the Wix schedule (`resourceId`). Statuses come from the schedule's
Google connection, else from its pending request: `NONE`, `PENDING`, `CONNECTED`,
`DISCONNECTED`, `DISCONNECTED_TOKEN_REVOKED`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field, WithJsonSchema
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.auth import Caller, CallerDep
from api.errors import NO_NUL, bad_request, conflict, precondition, responses
from api.external_calendars.common import LIVE, guard_schedule
from api.external_calendars.events import Filter, events_in
from api.external_calendars.schema import ID_MAX, SCHEDULE_EXAMPLE, EmailAddress, Text
from api.handover import broker_down
from api.v1.system import v1_flow, v1_system
from models import (
    Connection,
    ConnectionStatus,
    ErrorReason,
    SyncRequest,
    SyncRequestStatus,
)
from models.db import session_scope
from models.types import utcnow
from tasks.enqueue import request_approval_email, request_disconnect

router = APIRouter(prefix="/bookings/v1/externalCalendar", tags=["External Calendar Sync (v1)"])
APPROVAL_DAYS = 7


class CalendarKind(StrEnum):
    UNDEFINED = "UNDEFINED"
    GOOGLE = "GOOGLE"


class CalendarStatus(StrEnum):
    UNDEFINED = "UNDEFINED"
    NONE = "NONE"
    CONNECTED = "CONNECTED"
    PENDING = "PENDING"
    DISCONNECTED = "DISCONNECTED"
    DISCONNECTED_TOKEN_REVOKED = "DISCONNECTED_TOKEN_REVOKED"


def _resource_id() -> Any:
    return Field(min_length=1, max_length=ID_MAX, examples=[SCHEDULE_EXAMPLE])


class SyncBody(BaseModel):
    resourceId: Text = _resource_id()
    syncRequestEmail: EmailAddress = Field(max_length=320, examples=["alice@example.com"])
    calendar: CalendarKind = CalendarKind.GOOGLE


class UnsyncBody(BaseModel):
    resourceId: Text = _resource_id()
    calendar: CalendarKind = CalendarKind.GOOGLE


_MOMENT = {"type": "string", "format": "date-time"}
_RESOURCE = {"type": "string", "minLength": 1, "maxLength": ID_MAX, "pattern": NO_NUL}
# The filter as an object; the same object stringified (Wix's way) can only be described,
# so a string that does not hold one is refused as INVALID_FILTER.
FILTER_OBJECT = {
    "type": "object",
    "properties": {"start": _MOMENT, "end": _MOMENT,
                   "resourceId": {"anyOf": [_RESOURCE, {"type": "array", "items": _RESOURCE}]}},
    "required": ["start", "end"],
}  # fmt: skip
FILTER_SCHEMA = {"anyOf": [
    {"type": "string", "contentMediaType": "application/json", "contentSchema": FILTER_OBJECT},
    FILTER_OBJECT,
]}  # fmt: skip


class EventsQuery(BaseModel):
    filter: Annotated[str | dict[str, Any], WithJsonSchema(FILTER_SCHEMA)] = Field(
        description="A JSON object, usually sent as a string: `start`, `end` (required, RFC 3339 "
        "date-times, `end` later), `resourceId` (one or a list)",
        examples=['{"start": "2026-12-01T00:00:00.000Z", "end": "2026-12-31T00:00:00.000Z"}'],
    )


class EventsBody(BaseModel):
    query: EventsQuery


class SyncStatusOut(BaseModel):
    resourceId: str
    calendar: CalendarKind
    status: CalendarStatus


class StatusesResponse(BaseModel):
    statuses: list[SyncStatusOut]


class ExternalCalendarEvent(BaseModel):
    resourceId: str
    calendar: CalendarKind
    start: str
    end: str


class EventsResponse(BaseModel):
    events: list[ExternalCalendarEvent]


class Empty(BaseModel):
    pass


@router.post(
    "/sync",
    summary="Sync",
    description="Emails the calendar owner a link to approve syncing their Google Calendar "
    "with the resource's schedule. A newer request replaces a pending one.",
    response_model=Empty,
    responses=responses(400, 401, 403, 404, 409, 428, 503),
)
def sync(body: SyncBody, caller: CallerDep, request: Request) -> Empty:
    flow = v1_flow(request.app.state.settings)
    if flow is None or not flow.configured(request.app.state.settings):
        raise precondition("this server has no Google OAuth client", "calendar")
    with session_scope(request.app.state.engine) as db:
        guard_schedule(db, caller, body.resourceId, "resourceId")
        synced = _v1_connection(db, caller, body.resourceId, _system(request), live_only=True)
        if synced is not None:
            raise conflict("this resource is synced already", "resourceId",
                           code="ALREADY_CONNECTED")  # fmt: skip
        _cancel_pending(db, caller, body.resourceId)
        pending = SyncRequest(
            tenant_id=caller.tenant_id, resource_id=body.resourceId, email=body.syncRequestEmail,
            calendar=CalendarKind.GOOGLE.value,
            expires_at=utcnow() + timedelta(days=APPROVAL_DAYS),
        )  # fmt: skip
        db.add(pending)
        db.flush()
        request_id = pending.id
    if not request_approval_email(request_id):
        raise broker_down()
    return Empty()


@router.get(
    "/status",
    summary="List Sync Statuses",
    response_model=StatusesResponse,
    responses=responses(401, 403),
)
def list_statuses(caller: CallerDep, request: Request) -> StatusesResponse:
    with session_scope(request.app.state.engine) as db:
        resources = set(
            db.scalars(
                select(Connection.schedule_id).where(
                    Connection.tenant_id == caller.tenant_id,
                    Connection.provider == _system(request),
                )
            )
        )
        resources |= set(db.scalars(select(SyncRequest.resource_id).where(
            SyncRequest.tenant_id == caller.tenant_id)))  # fmt: skip
        system = _system(request)
        statuses = [_status(db, caller, r, system) for r in sorted(resources)]
        return StatusesResponse(statuses=statuses)


@router.get(
    "/status/{resourceId}",
    summary="Get Sync Status",
    response_model=StatusesResponse,
    responses=responses(400, 401, 403, 404),
)
def get_status(
    resource_id: Annotated[str, Path(alias="resourceId", min_length=1, max_length=ID_MAX)],
    caller: CallerDep,
    request: Request,
) -> StatusesResponse:
    with session_scope(request.app.state.engine) as db:
        guard_schedule(db, caller, resource_id, "resourceId")
        return StatusesResponse(statuses=[_status(db, caller, resource_id, _system(request))])


@router.post(
    "/unsync",
    summary="Unsync",
    description="Withdraws a pending request and disconnects the resource's Google calendar "
    "(its copies are removed by a worker, as for Disconnect).",
    response_model=Empty,
    responses=responses(400, 401, 403, 404, 503),
)
def unsync(body: UnsyncBody, caller: CallerDep, request: Request) -> Empty:
    with session_scope(request.app.state.engine) as db:
        guard_schedule(db, caller, body.resourceId, "resourceId")
        _cancel_pending(db, caller, body.resourceId)
        connection = _v1_connection(db, caller, body.resourceId, _system(request), live_only=False)
        disconnected = None
        if connection is not None and connection.status is not ConnectionStatus.DISCONNECTED:
            connection.status, disconnected = ConnectionStatus.DISCONNECTED, connection.id
            connection.next_reconcile_at = connection.next_poll_at = None
    if disconnected is not None and not request_disconnect(disconnected):
        raise broker_down()
    return Empty()


@router.post(
    "/events",
    summary="List Events",
    description="Events of the synced Google calendars in `start`..`end`, as calsync last "
    "synced them. The filter is a JSON object, usually stringified.",
    response_model=EventsResponse,
    responses=responses(400, 401, 403),
)
def list_events(body: EventsBody, caller: CallerDep, request: Request) -> EventsResponse:
    where = _filter(body.query.filter)
    with session_scope(request.app.state.engine) as db:
        found = events_in(db, request.app.state.settings, caller.tenant_id, where,
                          with_pi=False, provider=_system(request))
    return EventsResponse(events=[
        ExternalCalendarEvent(resourceId=f.out.scheduleId, calendar=CalendarKind.GOOGLE,
                              start=f.out.start, end=f.out.end)
        for f in sorted(found, key=lambda f: (f.start, f.key))
    ])  # fmt: skip


def _filter(raw: str | dict[str, Any]) -> Filter:
    field = "query.filter"
    # A stringified filter's content is beyond what the schema can check: its own code.
    code = "INVALID_FILTER" if isinstance(raw, str) else None
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except (ValueError, RecursionError):  # nesting too deep to read
        raise bad_request("not a JSON object", field, code) from None
    if not isinstance(data, dict):
        raise bad_request("not a JSON object", field, code)
    start = _moment(data.get("start"), f"{field}.start", code)
    end = _moment(data.get("end"), f"{field}.end", code)
    if end <= start:
        raise bad_request("must be later than start", f"{field}.end", "INVALID_TIME_RANGE")
    resources = data.get("resourceId") or []
    resources = [resources] if isinstance(resources, str) else resources
    if not isinstance(resources, list) or not all(_is_id(r) for r in resources):
        raise bad_request("one resource id or a list of them", f"{field}.resourceId", code)
    return Filter(start, end, tuple(resources))


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= ID_MAX and "\x00" not in value


def _moment(value: Any, field: str, code: str | None) -> datetime:
    if not isinstance(value, str) or not value:
        raise bad_request("required, an RFC 3339 date-time", field, code)
    try:
        moment = datetime.fromisoformat(value.upper())  # RFC 3339 allows t and z
    except ValueError:
        raise bad_request("not an RFC 3339 date-time", field, code) from None
    if moment.tzinfo is None:
        raise bad_request("needs a time zone offset or Z", field, code)
    return moment


def _system(request: Request) -> str:
    return v1_system(request.app.state.settings)


def _v1_connection(db: Session, caller: Caller, resource_id: str, system: str, *,
                   live_only: bool) -> Connection | None:  # fmt: skip
    query = select(Connection).where(
        Connection.tenant_id == caller.tenant_id, Connection.schedule_id == resource_id,
        Connection.provider == system,
    )  # fmt: skip
    if live_only:
        query = query.where(Connection.status.in_(LIVE))
    return db.scalars(query.order_by(Connection.created_at.desc())).first()


def _cancel_pending(db: Session, caller: Caller, resource_id: str) -> None:
    db.execute(
        update(SyncRequest)
        .where(SyncRequest.tenant_id == caller.tenant_id, SyncRequest.resource_id == resource_id,
               SyncRequest.status == SyncRequestStatus.PENDING)
        .values(status=SyncRequestStatus.CANCELLED)
    )  # fmt: skip


def _status(db: Session, caller: Caller, resource_id: str, system: str) -> SyncStatusOut:
    return SyncStatusOut(resourceId=resource_id, calendar=CalendarKind.GOOGLE,
                         status=status_of(db, caller, resource_id, system))  # fmt: skip


def status_of(db: Session, caller: Caller, resource_id: str, system: str) -> CalendarStatus:
    """A pending request newer than the last connection wins; then the connection's state."""
    connection = _v1_connection(db, caller, resource_id, system, live_only=False)
    pending = db.scalars(
        select(SyncRequest)
        .where(SyncRequest.tenant_id == caller.tenant_id, SyncRequest.resource_id == resource_id,
               SyncRequest.status == SyncRequestStatus.PENDING,
               SyncRequest.expires_at > utcnow())
        .order_by(SyncRequest.created_at.desc())
    ).first()  # fmt: skip
    if pending is not None and (connection is None or pending.created_at > connection.created_at):
        return CalendarStatus.PENDING
    if connection is None:
        return CalendarStatus.NONE
    if connection.status in LIVE:
        return CalendarStatus.CONNECTED
    revoked = connection.error_reason is ErrorReason.TOKEN_REVOKED
    if connection.status is ConnectionStatus.ERROR and revoked:
        return CalendarStatus.DISCONNECTED_TOKEN_REVOKED
    return CalendarStatus.DISCONNECTED
