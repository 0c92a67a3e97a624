"""Routes of the `events` resource, `events.watch` and `channels.stop`, at the discovery paths."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import (
    api_endpoint,
    empty_response,
    json_body,
    query_params,
    resource_response,
)
from .grants import Caller
from .state import GoogleState

PREFIX = "/calendar/v3"


async def list_events(request: Request, state: GoogleState, caller: Caller) -> Response:
    calendar_id = request.path_params["calendarId"]
    return resource_response(state.list_events(calendar_id, query_params(request), caller))


async def insert_event(request: Request, state: GoogleState, caller: Caller) -> Response:
    calendar_id = request.path_params["calendarId"]
    return resource_response(state.insert_event(calendar_id, await json_body(request), caller))


async def get_event(request: Request, state: GoogleState, caller: Caller) -> Response:
    params = request.path_params
    event = state.get_event(params["calendarId"], params["eventId"], caller)
    if request.headers.get("if-none-match") == event.get("etag"):
        return Response(status_code=304, headers={"ETag": event["etag"]})
    return resource_response(event)


async def update_event(request: Request, state: GoogleState, caller: Caller) -> Response:
    params = request.path_params
    event = state.update_event(
        params["calendarId"],
        params["eventId"],
        await json_body(request),
        caller,
        if_match=request.headers.get("if-match"),
    )
    return resource_response(event)


async def patch_event(request: Request, state: GoogleState, caller: Caller) -> Response:
    params = request.path_params
    event = state.patch_event(
        params["calendarId"],
        params["eventId"],
        await json_body(request),
        caller,
        if_match=request.headers.get("if-match"),
    )
    return resource_response(event)


async def delete_event(request: Request, state: GoogleState, caller: Caller) -> Response:
    params = request.path_params
    state.delete_event(
        params["calendarId"], params["eventId"], caller, if_match=request.headers.get("if-match")
    )
    return empty_response()


async def instances(request: Request, state: GoogleState, caller: Caller) -> Response:
    params = request.path_params
    body = state.instances(params["calendarId"], params["eventId"], query_params(request), caller)
    return resource_response(body)


async def watch(request: Request, state: GoogleState, caller: Caller) -> Response:
    base_url = str(request.base_url).rstrip("/")
    calendar_id = request.path_params["calendarId"]
    return resource_response(state.watch(calendar_id, await json_body(request), caller, base_url))


async def stop_channel(request: Request, state: GoogleState, caller: Caller) -> Response:
    state.stop_channel(await json_body(request), caller)
    return empty_response()


EVENTS = f"{PREFIX}/calendars/{{calendarId}}/events"
routes = [
    Route(f"{EVENTS}/watch", api_endpoint(watch), methods=["POST"]),
    Route(EVENTS, api_endpoint(list_events), methods=["GET"]),
    Route(EVENTS, api_endpoint(insert_event), methods=["POST"]),
    Route(f"{EVENTS}/{{eventId}}/instances", api_endpoint(instances), methods=["GET"]),
    Route(f"{EVENTS}/{{eventId}}", api_endpoint(get_event), methods=["GET"]),
    Route(f"{EVENTS}/{{eventId}}", api_endpoint(update_event), methods=["PUT"]),
    Route(f"{EVENTS}/{{eventId}}", api_endpoint(patch_event), methods=["PATCH"]),
    Route(f"{EVENTS}/{{eventId}}", api_endpoint(delete_event), methods=["DELETE"]),
    Route(f"{PREFIX}/channels/stop", api_endpoint(stop_channel), methods=["POST"]),
]
