"""Routes of `calendarList` (list, get) and `calendars` (get), at the discovery paths."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import api_endpoint, query_params, resource_response
from .grants import Caller
from .state import GoogleState

PREFIX = "/calendar/v3"


async def calendar_list(request: Request, state: GoogleState, caller: Caller) -> Response:
    return resource_response(state.calendar_list(caller, query_params(request)))


async def calendar_list_entry(request: Request, state: GoogleState, caller: Caller) -> Response:
    calendar_id = request.path_params["calendarId"]
    return resource_response(state.calendar_list_entry(caller, calendar_id))


async def calendar(request: Request, state: GoogleState, caller: Caller) -> Response:
    return resource_response(state.calendar_resource(caller, request.path_params["calendarId"]))


routes = [
    Route(f"{PREFIX}/users/me/calendarList", api_endpoint(calendar_list), methods=["GET"]),
    Route(
        f"{PREFIX}/users/me/calendarList/{{calendarId}}",
        api_endpoint(calendar_list_entry),
        methods=["GET"],
    ),
    Route(f"{PREFIX}/calendars/{{calendarId}}", api_endpoint(calendar), methods=["GET"]),
]
