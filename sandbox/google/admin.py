"""`/_sandbox/...`: seed data, inject faults, move the clock and inspect push deliveries over HTTP,
so a sandbox in another process can be driven like one in the test's own process.

Bodies and answers are JSON with camelCase keys. Bad input answers 400 `{"error": "..."}`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .api import json_body, query_params, sandbox_state
from .datetimes import rfc3339
from .errors import ApiError
from .state import GoogleState

AdminHandler = Callable[[GoogleState, dict[str, Any], Request], Any]
_OPTION_NAMES = {
    "accessTokenTtl": "access_token_ttl",
    "authCodeTtl": "auth_code_ttl",
    "syncTokenTtl": "sync_token_ttl",
    "defaultChannelTtl": "default_channel_ttl",
    "maxChannelTtl": "max_channel_ttl",
    "messageNumberGaps": "message_number_gaps",
    "requireAuth": "require_auth",
}
_PUSH_NAMES = {
    "pushMaxAttempts": "max_attempts",
    "pushBackoffSeconds": "backoff_seconds",
    "pushTimeoutSeconds": "timeout_seconds",
}


def admin(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state = sandbox_state(request)
        try:
            body = await json_body(request) if request.method in ("POST", "PUT", "PATCH") else {}
            # In a worker thread: some handlers wait (for push deliveries) and must not stall
            # the event loop.
            fields = body if isinstance(body, dict) else {}
            result = await run_in_threadpool(handler, state, fields, request)
        except ApiError as exc:
            return exc.response()
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if result is None:
            return Response(status_code=204)
        return JSONResponse(result)

    return endpoint


# -- data ----------------------------------------------------------------------------------------


def reset(state: GoogleState, body: dict[str, Any], request: Request) -> None:
    state.reset()


def add_account(state: GoogleState, body: dict[str, Any], request: Request) -> dict[str, Any]:
    calendar_id = state.add_account(
        body["email"], name=body.get("name", ""), time_zone=body.get("timeZone", "UTC")
    )
    return {"email": body["email"], "calendarId": calendar_id}


def add_calendar(state: GoogleState, body: dict[str, Any], request: Request) -> dict[str, Any]:
    calendar_id = state.add_calendar(
        body["owner"],
        calendar_id=body.get("id"),
        summary=body.get("summary", ""),
        time_zone=body.get("timeZone", "UTC"),
        description=body.get("description", ""),
    )
    return {"calendarId": calendar_id}


def share_calendar(state: GoogleState, body: dict[str, Any], request: Request) -> None:
    state.share_calendar(request.path_params["calendarId"], body["email"], body["role"])


def change_calendar(state: GoogleState, body: dict[str, Any], request: Request) -> None:
    calendar_id = request.path_params["calendarId"]
    if request.method == "DELETE":
        state.delete_calendar(calendar_id)
    else:
        state.rename_calendar(calendar_id, body["summary"])


def hide_calendar(state: GoogleState, body: dict[str, Any], request: Request) -> None:
    state.hide_calendar(body["email"], request.path_params["calendarId"],
                        bool(body.get("hidden", True)))  # fmt: skip


def unsubscribe_calendar(state: GoogleState, body: dict[str, Any], request: Request) -> None:
    state.unsubscribe_calendar(body["email"], request.path_params["calendarId"])


def add_client(state: GoogleState, body: dict[str, Any], request: Request) -> dict[str, Any]:
    client = state.add_client(
        body["clientId"], body["clientSecret"], tuple(body.get("redirectUris", ()))
    )
    return {"clientId": client.client_id, "redirectUris": list(client.redirect_uris)}


def issue_tokens(state: GoogleState, body: dict[str, Any], request: Request) -> dict[str, Any]:
    if "scope" in body:
        return state.issue_tokens(body["email"], body["clientId"], body["scope"])
    return state.issue_tokens(body["email"], body["clientId"])


def set_consent(state: GoogleState, body: dict[str, Any], request: Request) -> dict[str, Any]:
    decision = body.get("decision", "approve")
    if decision not in ("approve", "deny"):
        raise ValueError("decision must be approve or deny")
    with state.lock:
        state.consent_user = body.get("user")
        state.consent_decision = decision
    return {"user": state.consent_user, "decision": decision}


def revoke(state: GoogleState, body: dict[str, Any], request: Request) -> dict[str, Any]:
    return {"revoked": state.revoke_access(body.get("email"), body.get("clientId"))}


def expire_access_tokens(state: GoogleState, body: dict[str, Any], request: Request) -> None:
    state.expire_access_tokens(body.get("email"))


def expire_sync_tokens(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    return {"expired": state.expire_sync_tokens(body.get("calendarId"), body.get("token"))}


def stored_events(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    return {"items": state.stored_events(request.path_params["calendarId"])}


def owner_insert(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    return state.insert_event(request.path_params["calendarId"], body)


def owner_patch(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    params = request.path_params
    return state.patch_event(params["calendarId"], params["eventId"], body)


def owner_update(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    params = request.path_params
    return state.update_event(params["calendarId"], params["eventId"], body)


def owner_delete(state: GoogleState, body: dict[str, Any], request: Request) -> None:
    state.delete_event(request.path_params["calendarId"], request.path_params["eventId"])


# -- faults, clock, options, push ------------------------------------------------------------------


def damage(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    drop = body.get("drop")
    if not isinstance(drop, list) or not all(isinstance(name, str) for name in drop):
        raise ValueError("drop must be a list of field names ([] repairs the event)")
    params = request.path_params
    return state.damage_event(params["calendarId"], params["eventId"], drop)


def rate_limit(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    state.faults.rate_limit(
        int(body.get("count", 1)),
        status=int(body.get("status", 403)),
        reason=body.get("reason", "rateLimitExceeded"),
        retry_after=body.get("retryAfter"),
        match=body.get("match"),
        target=body.get("target", "api"),
    )
    return state.faults.pending()


def fail(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    state.faults.fail(
        int(body.get("count", 1)),
        status=int(body.get("status", 500)),
        reason=body.get("reason", "backendError"),
        match=body.get("match"),
        target=body.get("target", "api"),
    )
    return state.faults.pending()


def quota(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    state.faults.set_quota(
        int(body["limit"]),
        float(body.get("windowSeconds", 60)),
        status=int(body.get("status", 403)),
        reason=body.get("reason", "userRateLimitExceeded"),
    )
    return state.faults.pending()


def drop_notifications(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    state.faults.drop_notifications(int(body.get("count", 1)))
    return state.faults.pending()


def expire_next_sync_token(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    state.faults.expire_next_sync_token(int(body.get("count", 1)))
    return state.faults.pending()


def faults(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    if request.method == "DELETE":
        state.faults.clear()
    return state.faults.pending()


def clock(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    if "set" in body:
        state.clock.set(datetime.fromisoformat(str(body["set"]).replace("Z", "+00:00")))
    if "advanceSeconds" in body:
        state.clock.advance(float(body["advanceSeconds"]))
    return {"now": rfc3339(state.clock.now())}


def options(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    unknown = set(body) - set(_OPTION_NAMES) - set(_PUSH_NAMES)
    if unknown:
        raise ValueError(f"unknown options: {sorted(unknown)}")
    for key, attribute in _OPTION_NAMES.items():
        if key in body:
            setattr(state.options, attribute, body[key])
    push = {_PUSH_NAMES[k]: v for k, v in body.items() if k in _PUSH_NAMES}
    state.options.push = dataclasses.replace(state.options.push, **push)
    current = dataclasses.asdict(state.options)
    return {key: current[attribute] for key, attribute in _OPTION_NAMES.items()}


def channels(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    calendar_id = query_params(request).get("calendarId", [None])[-1]
    return {"items": state.live_channels(calendar_id)}


def notifications(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    if request.method == "DELETE":
        state.push.clear_log()
    return {"items": [dataclasses.asdict(d) for d in state.deliveries()]}


def wait_for_push(state: GoogleState, body: dict[str, Any], request: Request) -> Any:
    return {"idle": state.wait_for_push_idle(float(body.get("timeout", 10)))}


routes = [
    Route("/_sandbox/reset", admin(reset), methods=["POST"]),
    Route("/_sandbox/accounts", admin(add_account), methods=["POST"]),
    Route("/_sandbox/calendars", admin(add_calendar), methods=["POST"]),
    Route("/_sandbox/calendars/{calendarId}", admin(change_calendar), methods=["PATCH", "DELETE"]),
    Route("/_sandbox/calendars/{calendarId}/share", admin(share_calendar), methods=["POST"]),
    Route("/_sandbox/calendars/{calendarId}/hide", admin(hide_calendar), methods=["POST"]),
    Route(
        "/_sandbox/calendars/{calendarId}/unsubscribe",
        admin(unsubscribe_calendar),
        methods=["POST"],
    ),
    Route("/_sandbox/calendars/{calendarId}/events", admin(stored_events), methods=["GET"]),
    Route("/_sandbox/calendars/{calendarId}/events", admin(owner_insert), methods=["POST"]),
    Route(
        "/_sandbox/calendars/{calendarId}/events/{eventId}", admin(owner_patch), methods=["PATCH"]
    ),
    Route(
        "/_sandbox/calendars/{calendarId}/events/{eventId}", admin(owner_update), methods=["PUT"]
    ),
    Route(
        "/_sandbox/calendars/{calendarId}/events/{eventId}", admin(owner_delete), methods=["DELETE"]
    ),
    Route(
        "/_sandbox/calendars/{calendarId}/events/{eventId}/damage",
        admin(damage),
        methods=["POST"],
    ),
    Route("/_sandbox/clients", admin(add_client), methods=["POST"]),
    Route("/_sandbox/tokens", admin(issue_tokens), methods=["POST"]),
    Route("/_sandbox/consent", admin(set_consent), methods=["POST"]),
    Route("/_sandbox/revoke", admin(revoke), methods=["POST"]),
    Route("/_sandbox/access-tokens/expire", admin(expire_access_tokens), methods=["POST"]),
    Route("/_sandbox/sync-tokens/expire", admin(expire_sync_tokens), methods=["POST"]),
    Route("/_sandbox/faults", admin(faults), methods=["GET", "DELETE"]),
    Route("/_sandbox/faults/rate-limit", admin(rate_limit), methods=["POST"]),
    Route("/_sandbox/faults/fail", admin(fail), methods=["POST"]),
    Route("/_sandbox/faults/quota", admin(quota), methods=["POST"]),
    Route("/_sandbox/faults/drop-notifications", admin(drop_notifications), methods=["POST"]),
    Route(
        "/_sandbox/faults/expire-next-sync-token", admin(expire_next_sync_token), methods=["POST"]
    ),
    Route("/_sandbox/clock", admin(clock), methods=["GET", "POST"]),
    Route("/_sandbox/options", admin(options), methods=["GET", "PATCH"]),
    Route("/_sandbox/channels", admin(channels), methods=["GET"]),
    Route("/_sandbox/notifications", admin(notifications), methods=["GET", "DELETE"]),
    Route("/_sandbox/notifications/wait", admin(wait_for_push), methods=["POST"]),
]
