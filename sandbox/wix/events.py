"""Calendar V3 routes: events (single and bulk) and the schedules they belong to.

Every route needs an app access token; the token decides the site (app instance) the call acts on,
and changes made through these routes are attributed to the app (`identity.identityType: APP`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.wix.errors import invalid
from sandbox.wix.model import Actor
from sandbox.wix.oauth import Grant, authenticate
from sandbox.wix.web import read_json, wix_state


def _caller(request: Request) -> tuple[Grant, Actor]:
    grant = authenticate(request)
    return grant, Actor.app(grant.app_id)


async def create_event(request: Request) -> JSONResponse:
    grant, actor = _caller(request)
    body = await read_json(request)
    event = wix_state(request).create_event(grant.instance_id, body.get("event"), actor)
    return JSONResponse({"event": event})


async def get_event(request: Request) -> JSONResponse:
    grant, _ = _caller(request)
    event = wix_state(request).get_event(
        grant.instance_id, request.path_params["id"], request.query_params.get("timeZone")
    )
    return JSONResponse({"event": event})


async def update_event(request: Request) -> JSONResponse:
    grant, actor = _caller(request)
    body = await read_json(request)
    event = body.get("event", {})
    if not isinstance(event, dict):
        raise invalid("event", "expected an object")
    raw = {**event, "id": request.path_params["id"]}
    mask = body.get("fieldmask", body.get("fieldMask"))
    updated = wix_state(request).update_event(grant.instance_id, raw, fieldmask=mask, actor=actor)
    return JSONResponse({"event": updated})


async def cancel_event(request: Request) -> JSONResponse:
    grant, actor = _caller(request)
    body = await read_json(request)
    event = wix_state(request).cancel_event(
        grant.instance_id, request.path_params["id"], revision=body.get("revision"), actor=actor
    )
    return JSONResponse({"event": event})


async def query_events(request: Request) -> JSONResponse:
    grant, _ = _caller(request)
    body = await read_json(request)
    return JSONResponse(wix_state(request).query_events(grant.instance_id, body))


async def bulk_create(request: Request) -> JSONResponse:
    grant, actor = _caller(request)
    body = await read_json(request)
    return JSONResponse(wix_state(request).bulk_create_events(grant.instance_id, body, actor))


async def bulk_update(request: Request) -> JSONResponse:
    grant, actor = _caller(request)
    body = await read_json(request)
    return JSONResponse(wix_state(request).bulk_update_events(grant.instance_id, body, actor))


async def bulk_cancel(request: Request) -> JSONResponse:
    grant, actor = _caller(request)
    body = await read_json(request)
    return JSONResponse(wix_state(request).bulk_cancel_events(grant.instance_id, body, actor))


async def query_schedules(request: Request) -> JSONResponse:
    grant, _ = _caller(request)
    body = await read_json(request)
    return JSONResponse(wix_state(request).query_schedules(grant.instance_id, body))


async def get_schedule(request: Request) -> JSONResponse:
    grant, _ = _caller(request)
    schedule = wix_state(request).get_schedule(grant.instance_id, request.path_params["id"])
    return JSONResponse({"schedule": schedule})


async def update_schedule(request: Request) -> JSONResponse:
    grant, _ = _caller(request)
    body = await read_json(request)
    schedule = wix_state(request).update_schedule(
        grant.instance_id, request.path_params["id"], body.get("schedule")
    )
    return JSONResponse({"schedule": schedule})


routes = [
    Route("/calendar/v3/events", create_event, methods=["POST"]),
    Route("/calendar/v3/events/query", query_events, methods=["POST"]),
    Route("/calendar/v3/events/{id}", get_event, methods=["GET"]),
    Route("/calendar/v3/events/{id}", update_event, methods=["PATCH"]),
    Route("/calendar/v3/events/{id}/cancel", cancel_event, methods=["POST"]),
    Route("/calendar/v3/bulk/events/create", bulk_create, methods=["POST"]),
    Route("/calendar/v3/bulk/events/update", bulk_update, methods=["POST"]),
    Route("/calendar/v3/bulk/events/cancel", bulk_cancel, methods=["POST"]),
    Route("/calendar/v3/schedules/query", query_schedules, methods=["POST"]),
    Route("/calendar/v3/schedules/{id}", get_schedule, methods=["GET"]),
    Route("/calendar/v3/schedules/{id}", update_schedule, methods=["PATCH"]),
]
