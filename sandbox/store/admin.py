"""`/_store/...`: what a person or a test does to the store (never subject to faults)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.store.app import HttpFault, StoreState, route
from sandbox.store.push import Channel
from sync.codec import event_from_dict, remote_to_dict


async def add_calendar(request: Request, state: StoreState) -> Response:
    body = await request.json()
    state.add_calendar(body["name"], read_only=bool(body.get("readOnly", False)))
    return JSONResponse({"name": body["name"]}, status_code=201)


async def list_calendars(request: Request, state: StoreState) -> Response:
    with state.lock:
        found = [{"name": name, "readOnly": calendar.read_only}
                 for name, calendar in sorted(state.calendars.items())]  # fmt: skip
    return JSONResponse({"calendars": found})


async def list_events(request: Request, state: StoreState) -> Response:
    with state.lock:
        events = state.calendar(request.path_params["cal"]).events()
    return JSONResponse({"events": [remote_to_dict(r) for r in events.values()]})


async def person_add(request: Request, state: StoreState) -> Response:
    body = await request.json()
    name = request.path_params["cal"]
    with state.lock:
        remote = state.calendar(name).add(event_from_dict(body["event"]))
    state.changed(name, remote.id)
    return JSONResponse(remote_to_dict(remote), status_code=201)


async def person_edit(request: Request, state: StoreState) -> Response:
    body = await request.json()
    name = request.path_params["cal"]
    with state.lock:
        remote = state.calendar(name).edit(
            request.path_params["id"], event_from_dict(body["event"])
        )
    state.changed(name, remote.id)
    return JSONResponse(remote_to_dict(remote))


async def person_remove(request: Request, state: StoreState) -> Response:
    name = request.path_params["cal"]
    with state.lock:
        state.calendar(name).remove(request.path_params["id"])
    state.changed(name, request.path_params["id"])
    return Response(status_code=204)


async def expire_cursors(request: Request, state: StoreState) -> Response:
    with state.lock:
        state.calendar(request.path_params["cal"]).expire_cursors()
    return Response(status_code=204)


async def watch(request: Request, state: StoreState) -> Response:
    body = await request.json()
    state.calendar(body["calendar"])
    channel = Channel(body["id"], body["calendar"], body["address"], body["secret"])
    state.pusher.watch(channel)
    return JSONResponse({"id": channel.channel_id}, status_code=201)


async def stop_channel(request: Request, state: StoreState) -> Response:
    state.pusher.stop(request.path_params["id"])
    return Response(status_code=204)


async def add_faults(request: Request, state: StoreState) -> Response:
    body = await request.json()
    fault = HttpFault(
        int(body["status"]), int(body.get("times", 1)), body.get("retryAfter"),
        body.get("method"), body.get("pathContains"), body.get("bodyContains"),
    )  # fmt: skip
    with state.lock:
        state.faults.append(fault)
    return Response(status_code=204)


async def clear_faults(request: Request, state: StoreState) -> Response:
    with state.lock:
        state.faults.clear()
        state.slow_ms = 0
    return Response(status_code=204)


async def request_log(request: Request, state: StoreState) -> Response:
    with state.lock:
        log = [{"at": t, "method": m, "path": p, "status": s} for t, m, p, s in state.requests]
    return JSONResponse({"requests": log})


def admin_routes() -> list[Route]:
    cal = "/_store/calendars/{cal}"
    return [
        route("/_store/calendars", add_calendar, ["POST"]),
        route("/_store/calendars", list_calendars, ["GET"]),
        route(f"{cal}/events", list_events, ["GET"]),
        route(f"{cal}/events", person_add, ["POST"]),
        route(f"{cal}/events/{{id}}", person_edit, ["PUT"]),
        route(f"{cal}/events/{{id}}", person_remove, ["DELETE"]),
        route(f"{cal}/expire-cursors", expire_cursors, ["POST"]),
        route("/_store/channels", watch, ["POST"]),
        route("/_store/channels/{id}", stop_channel, ["DELETE"]),
        route("/_store/faults", add_faults, ["POST"]),
        route("/_store/faults", clear_faults, ["DELETE"]),
        route("/_store/requests", request_log, ["GET"]),
    ]
