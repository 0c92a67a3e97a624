"""`/_sandbox/...`: set the world up and break it on purpose. No token needed; never faulted.

Changes made here act as the site owner in the Wix dashboard (`identityType: WIX_USER`, events get
Wix Bookings' `appId`), which is how sessions that calsync did not write come to exist.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sandbox.wix.errors import WixError, invalid
from sandbox.wix.model import App
from sandbox.wix.signing import FORGERIES, Forgery
from sandbox.wix.state import ManualClock
from sandbox.wix.web import read_json, wix_state

PREFIX = "/_sandbox"


def _app_json(app: App) -> dict[str, Any]:
    return {
        "appId": app.app_id,
        "appSecret": app.secret,
        "webhookUrl": app.webhook_url,
        "publicKeyPem": app.public_key_pem,
        "kid": app.key.kid,
    }


def _int(body: dict[str, Any], name: str, default: int | None) -> int | None:
    value = body.get(name, default)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise invalid(name, "must be an integer")
    return value


# apps and sites


async def add_app(request: Request) -> JSONResponse:
    body = await read_json(request)
    state = wix_state(request)
    app = await run_in_threadpool(  # RSA key generation takes a moment: keep the loop free
        state.add_app, body.get("appId"), body.get("appSecret"), body.get("webhookUrl")
    )
    return JSONResponse(_app_json(app))


async def get_app(request: Request) -> JSONResponse:
    return JSONResponse(_app_json(wix_state(request).app(request.path_params["app_id"])))


async def public_key(request: Request) -> PlainTextResponse:
    app = wix_state(request).app(request.path_params["app_id"])
    return PlainTextResponse(app.public_key_pem, media_type="application/x-pem-file")


async def set_webhook_url(request: Request) -> JSONResponse:
    body = await read_json(request)
    state = wix_state(request)
    state.set_webhook_url(request.path_params["app_id"], body.get("url"))
    return JSONResponse(_app_json(state.app(request.path_params["app_id"])))


async def install(request: Request) -> JSONResponse:
    body = await read_json(request)
    site = wix_state(request).install(
        request.path_params["app_id"], body.get("instanceId"), body.get("timeZone", "UTC")
    )
    return JSONResponse(
        {"instanceId": site.instance_id, "appId": site.app_id, "timeZone": site.time_zone}
    )


async def remove(request: Request) -> JSONResponse:
    wix_state(request).remove(request.path_params["instance_id"])
    return JSONResponse({})


# schedules and sessions, as the site owner


async def add_schedule(request: Request) -> JSONResponse:
    body = await read_json(request)
    if not isinstance(body.get("name"), str):
        raise invalid("name", "required")
    if not isinstance(body.get("wixUserId", ""), str):
        raise invalid("wixUserId", "must be a string")
    schedule = wix_state(request).add_schedule(
        request.path_params["instance_id"],
        body["name"],
        external_id=body.get("externalId"),
        time_zone=body.get("timeZone"),
        external_calendar_overrides=body.get("externalCalendarOverrides"),
        schedule_id=body.get("id"),
        owner_user_id=body.get("wixUserId"),
    )
    return JSONResponse({"schedule": schedule})


async def set_overrides(request: Request) -> JSONResponse:
    body = await read_json(request)
    schedule = wix_state(request).set_schedule_overrides(
        request.path_params["instance_id"], request.path_params["schedule_id"], body
    )
    return JSONResponse({"schedule": schedule})


async def create_session(request: Request) -> JSONResponse:
    body = await read_json(request)
    event = wix_state(request).create_event(request.path_params["instance_id"], body.get("event"))
    return JSONResponse({"event": event})


async def update_session(request: Request) -> JSONResponse:
    body = await read_json(request)
    event = body.get("event", {})
    if not isinstance(event, dict):
        raise invalid("event", "expected an object")
    updated = wix_state(request).update_event(
        request.path_params["instance_id"],
        {**event, "id": request.path_params["event_id"]},
        fieldmask=body.get("fieldmask"),
        require_revision=False,
    )
    return JSONResponse({"event": updated})


async def cancel_session(request: Request) -> JSONResponse:
    event = wix_state(request).cancel_event(
        request.path_params["instance_id"], request.path_params["event_id"]
    )
    return JSONResponse({"event": event})


async def session_overrides(request: Request) -> JSONResponse:
    overrides = wix_state(request).effective_overrides(
        request.path_params["instance_id"], request.path_params["event_id"]
    )
    return JSONResponse({"externalCalendarOverrides": overrides})


# faults


async def add_fault(request: Request) -> JSONResponse:
    body = await read_json(request)
    plan = wix_state(request).faults
    where = {"path_prefix": body.get("pathPrefix", "/"), "method": body.get("method")}
    times = _int(body, "times", 1)
    kind = body.get("kind")
    if kind == "error":
        plan.fail(status=_int(body, "status", 503) or 503, times=times, **where)
    elif kind == "delay":
        plan.slow(ms=_int(body, "delayMs", 0) or 0, times=_int(body, "times", None), **where)
    elif kind == "throttle":
        plan.throttle(times=times, retry_after=_int(body, "retryAfter", 1) or 1, **where)
    else:
        raise invalid("kind", "one of error, delay, throttle")
    return JSONResponse({})


async def set_rate_limit(request: Request) -> JSONResponse:
    body = await read_json(request)
    requests, per_seconds = body.get("requests"), body.get("perSeconds")
    if not isinstance(requests, int) or not isinstance(per_seconds, int | float):
        raise invalid("requests", "requests (int) and perSeconds (number) are required")
    wix_state(request).faults.rate_limit(requests, float(per_seconds))
    return JSONResponse({})


async def clear_faults(request: Request) -> JSONResponse:
    wix_state(request).faults.clear()
    return JSONResponse({})


# webhooks


def _forgery(value: Any) -> Forgery:
    for kind in FORGERIES:
        if kind == value:
            return kind
    raise invalid("kind", f"one of {', '.join(FORGERIES)}")


async def list_deliveries(request: Request) -> JSONResponse:
    deliveries = list(wix_state(request).webhooks.deliveries)
    return JSONResponse({"deliveries": [d.summary() for d in deliveries]})


async def replay(request: Request) -> JSONResponse:
    webhooks = wix_state(request).webhooks
    try:
        delivery = await run_in_threadpool(webhooks.replay, request.path_params["delivery_id"])
    except KeyError as exc:
        raise WixError(404, "DELIVERY_NOT_FOUND", "no such delivery") from exc
    return JSONResponse(delivery.summary())


async def forge(request: Request) -> JSONResponse:
    body = await read_json(request)
    kind = _forgery(body.get("kind"))
    webhooks = wix_state(request).webhooks
    try:
        delivery = await run_in_threadpool(webhooks.forge, kind, body.get("deliveryId"))
    except (KeyError, LookupError) as exc:
        raise WixError(404, "DELIVERY_NOT_FOUND", "no delivery to copy") from exc
    return JSONResponse(delivery.summary())


async def webhook_control(request: Request) -> JSONResponse:
    body = await read_json(request)
    webhooks = wix_state(request).webhooks
    action = request.path_params["action"]
    if action == "drop":
        webhooks.drop_next(_int(body, "count", 1) or 1)
    elif action == "duplicate":
        webhooks.duplicate_next(_int(body, "count", 1) or 1)
    elif action == "pause":
        webhooks.pause()
    elif action == "resume":
        webhooks.resume(reverse=bool(body.get("reverse", False)))
    elif action == "flush":
        idle = await run_in_threadpool(webhooks.flush, float(body.get("timeout", 5)))
        return JSONResponse({"idle": idle})
    else:
        raise WixError(404, "NOT_FOUND", f"unknown webhook control {action!r}")
    return JSONResponse({})


async def advance_clock(request: Request) -> JSONResponse:
    body = await read_json(request)
    clock = wix_state(request).clock
    if not isinstance(clock, ManualClock):
        raise WixError(409, "CLOCK_NOT_MANUAL", "the sandbox runs on the system clock")
    now = clock.advance(float(body.get("seconds", 0)))
    return JSONResponse({"now": now.isoformat()})


routes = [
    Route(f"{PREFIX}/apps", add_app, methods=["POST"]),
    Route(f"{PREFIX}/apps/{{app_id}}", get_app, methods=["GET"]),
    Route(f"{PREFIX}/apps/{{app_id}}/public-key", public_key, methods=["GET"]),
    Route(f"{PREFIX}/apps/{{app_id}}/webhook-url", set_webhook_url, methods=["PUT"]),
    Route(f"{PREFIX}/apps/{{app_id}}/instances", install, methods=["POST"]),
    Route(f"{PREFIX}/instances/{{instance_id}}/remove", remove, methods=["POST"]),
    Route(f"{PREFIX}/instances/{{instance_id}}/schedules", add_schedule, methods=["POST"]),
    Route(
        f"{PREFIX}/instances/{{instance_id}}/schedules/{{schedule_id}}/external-calendar-overrides",
        set_overrides,
        methods=["PUT"],
    ),
    Route(f"{PREFIX}/instances/{{instance_id}}/events", create_session, methods=["POST"]),
    Route(
        f"{PREFIX}/instances/{{instance_id}}/events/{{event_id}}", update_session, methods=["PATCH"]
    ),
    Route(
        f"{PREFIX}/instances/{{instance_id}}/events/{{event_id}}/cancel",
        cancel_session,
        methods=["POST"],
    ),
    Route(
        f"{PREFIX}/instances/{{instance_id}}/events/{{event_id}}/overrides",
        session_overrides,
        methods=["GET"],
    ),
    Route(f"{PREFIX}/faults", add_fault, methods=["POST"]),
    Route(f"{PREFIX}/faults", clear_faults, methods=["DELETE"]),
    Route(f"{PREFIX}/faults/rate-limit", set_rate_limit, methods=["PUT"]),
    Route(f"{PREFIX}/webhooks/deliveries", list_deliveries, methods=["GET"]),
    Route(f"{PREFIX}/webhooks/deliveries/{{delivery_id}}/replay", replay, methods=["POST"]),
    Route(f"{PREFIX}/webhooks/forge", forge, methods=["POST"]),
    Route(f"{PREFIX}/webhooks/{{action}}", webhook_control, methods=["POST"]),
    Route(f"{PREFIX}/clock/advance", advance_clock, methods=["POST"]),
]
