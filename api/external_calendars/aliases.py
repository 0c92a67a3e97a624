"""Wix's alias bindings of the External Calendars API ("Additional Binding 1" in Wix's spec),
under `/bookings/v2/external-calendar`: each is the same operation as its primary binding,
served by the same handler, so the API key, the tenant's rate limit, the checks and the error
shapes are the same. Two lists take a body instead of a query string (`POST list-connections`,
`POST list-events`), as Wix binds them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from api.auth import CallerDep
from api.errors import responses
from api.external_calendars import catalog, connections, events, reconfigure
from api.external_calendars.ids import CONNECTION
from api.external_calendars.paging import DEFAULT_LIMIT, MAX_LIMIT
from api.external_calendars.schema import ListConnectionsResponse, ListEventsResponse, Text

PREFIX = "/bookings/v2/external-calendar"
PRIMARY = "/bookings/v2/external-calendars"

router = APIRouter(prefix=PREFIX, tags=["External Calendars (v2): Wix's alias bindings"])


def _alias(path: str, method: str, handler: Callable[..., Any]) -> None:
    """`handler`'s operation, documented as its primary binding is, at `path` too."""
    primary = next(r for module in (catalog, connections, reconfigure)
                   for r in module.router.routes
                   if isinstance(r, APIRoute) and r.endpoint is handler)  # fmt: skip
    binding = f"{' '.join(primary.methods or ())} {PRIMARY}{_plain(primary.path)}"
    router.add_api_route(
        path, handler, methods=[method], response_model=primary.response_model,
        response_model_exclude_none=primary.response_model_exclude_none,
        responses=primary.responses, status_code=primary.status_code,
        summary=f"{primary.summary} (alias)",
        description=f"Wix's alias binding of `{binding}`: the same operation.",
    )  # fmt: skip


def _plain(path: str) -> str:
    return path.replace(":record_id}", "}")


_alias("/providers", "GET", catalog.list_providers)
_alias("/connect-by-oauth", "POST", connections.connect_by_oauth)
_alias("/connect-by-credentials", "POST", connections.connect_by_credentials)
_alias(CONNECTION, "GET", connections.get_connection)
_alias(f"{CONNECTION}/calendars", "GET", connections.list_calendars)
_alias(f"{CONNECTION}/sync-config", "POST", reconfigure.update_sync_config)
_alias(f"{CONNECTION}/disconnect", "POST", connections.disconnect)


class CursorPaging(BaseModel):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: Text | None = Field(None, max_length=4096, description="`pagingMetadata.cursors.next`")


class ListConnectionsRequest(BaseModel):
    scheduleIds: list[Text] | None = Field(None, max_length=100)
    partialFailure: bool = False
    cursorPaging: CursorPaging = Field(default_factory=CursorPaging)


class ListEventsRequest(BaseModel):
    start: datetime | None = Field(None, alias="from", examples=["2026-12-01T00:00:00.000Z"])
    end: datetime | None = Field(None, alias="to", examples=["2026-12-31T00:00:00.000Z"])
    scheduleIds: list[Text] | None = Field(None, max_length=100)
    userIds: list[Text] | None = Field(None, max_length=100)
    allDay: bool | None = None
    fieldsets: list[events.Fieldset] | None = Field(None, max_length=2)
    partialFailure: bool = False
    cursorPaging: CursorPaging = Field(default_factory=CursorPaging)


@router.post(
    "/list-connections",
    summary="List Connections (alias)",
    description=f"Wix's alias binding of `GET {PRIMARY}/connections`: the same operation, its "
    "parameters in the body.",
    response_model=ListConnectionsResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403),
)
def list_connections(caller: CallerDep, request: Request, body: ListConnectionsRequest | None = None
                     ) -> ListConnectionsResponse:  # fmt: skip
    body = body or ListConnectionsRequest()
    return connections.list_connections(
        caller, request, body.scheduleIds, body.partialFailure, body.cursorPaging.limit,
        body.cursorPaging.cursor,
    )  # fmt: skip


@router.post(
    "/list-events",
    summary="List Events (alias)",
    description=f"Wix's alias binding of `GET {PRIMARY}/events`: the same operation, its "
    "parameters in the body.",
    response_model=ListEventsResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403),
)
def list_events(caller: CallerDep, request: Request, body: ListEventsRequest | None = None
                ) -> ListEventsResponse:  # fmt: skip
    body = body or ListEventsRequest()
    return events.list_events(
        caller, request, body.start, body.end, body.scheduleIds, body.userIds, body.allDay,
        body.fieldsets, body.cursorPaging.limit, body.cursorPaging.cursor, body.partialFailure,
    )  # fmt: skip
