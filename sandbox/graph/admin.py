"""`/_sandbox/...`: seed data, act as the mailbox owner in Outlook, inject faults and lifecycle
events, move the clock. No auth and no faults apply here; every route maps to a Python method."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .context import json_body
from .errors import bad_request
from .resources import render_calendar, render_event, render_user
from .subscriptions import render as render_subscription
from .zones import format_utc

if TYPE_CHECKING:
    from .state import GraphState

Handler = Callable[[Request], Awaitable[Response]]


async def _body(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _count(body: dict[str, Any]) -> tuple[int | None, float]:
    """`{"count": n}` for the next n, or `{"share": 0.3}` for a share until cleared."""
    share = float(body.get("share", 1.0))
    count = body.get("count", None if "share" in body else 1)
    return (None if count is None else int(count)), share


def _guarded(handler: Handler) -> Handler:
    """A missing or mistyped field in an admin body is the caller's error: 400, not 500."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except (KeyError, ValueError, TypeError) as exc:
            raise bad_request(f"Invalid admin request: {type(exc).__name__}: {exc}") from None

    return run


def routes(state: GraphState) -> list[Route]:
    def event_json(user: str, instance: Any) -> JSONResponse:
        return JSONResponse(render_event(instance, state.mailbox(user).user), 201)

    async def add_user(request: Request) -> Response:
        body = await _body(request)
        user = state.add_user(
            body["upn"],
            body.get("displayName"),
            user_id=body.get("id"),
            time_zone=body.get("timeZone", "UTC"),
        )
        default = state.calendar(user.id, None)
        return JSONResponse({**render_user(user), "defaultCalendarId": default.id}, 201)

    async def add_calendar(request: Request) -> Response:
        body, user = await _body(request), request.path_params["user"]
        cal = state.add_calendar(
            user,
            body["name"],
            can_edit=bool(body.get("canEdit", True)),
            is_default=bool(body.get("isDefault", False)),
        )
        return JSONResponse(render_calendar(cal, state.mailbox(user).user), 201)

    async def set_calendar(request: Request) -> Response:
        body, user, cal = (
            await _body(request),
            request.path_params["user"],
            request.path_params["cal"],
        )
        if "canEdit" in body:
            state.set_calendar_access(user, cal, can_edit=bool(body["canEdit"]))
        if "name" in body:
            state.rename_calendar(user, cal, str(body["name"]))
        return JSONResponse(render_calendar(state.calendar(user, cal), state.mailbox(user).user))

    async def remove_calendar(request: Request) -> Response:
        state.remove_calendar(request.path_params["user"], request.path_params["cal"])
        return Response(status_code=204)

    async def owner_create(request: Request) -> Response:
        body, user = await _body(request), request.path_params["user"]
        calendar_id = body.pop("calendarId", None)
        instance, _ = state.create_event(user, body, calendar_id=calendar_id, check_access=False)
        return event_json(user, instance)

    async def owner_update(request: Request) -> Response:
        body, user = await _body(request), request.path_params["user"]
        instance = state.update_event(user, request.path_params["eid"], body, check_access=False)
        return JSONResponse(render_event(instance, state.mailbox(user).user))

    async def owner_delete(request: Request) -> Response:
        state.delete_event(
            request.path_params["user"], request.path_params["eid"], check_access=False
        )
        return Response(status_code=204)

    async def damage(request: Request) -> Response:
        body, user = await _body(request), request.path_params["user"]
        drop = body.get("drop")
        if not isinstance(drop, list) or not all(isinstance(name, str) for name in drop):
            raise bad_request("drop must be a list of property names ([] repairs the event)")
        instance = state.damage_event(user, request.path_params["eid"], drop)
        return JSONResponse(render_event(instance, state.mailbox(user).user))

    async def invite(request: Request) -> Response:
        body, user = await _body(request), request.path_params["user"]
        organizer = body.pop("organizer", None)
        if not isinstance(organizer, dict):
            raise bad_request("organizer must be an emailAddress object (name, address)")
        return event_json(user, state.invite(user, body, organizer))

    async def respond(request: Request) -> Response:
        body, user = await _body(request), request.path_params["user"]
        instance = state.respond(user, request.path_params["eid"], str(body.get("response")))
        return JSONResponse(render_event(instance, state.mailbox(user).user))

    async def register_app(request: Request) -> Response:
        body = await _body(request)
        app = state.identity.register_app(
            body.get("clientId"), body.get("clientSecret"), tuple(body.get("redirectUris", ()))
        )
        return JSONResponse(
            {
                "clientId": app.client_id,
                "clientSecret": app.client_secret,
                "redirectUris": list(app.redirect_uris),
            },
            201,
        )

    async def tokens(request: Request) -> Response:
        body = await _body(request)
        extra = {"scopes": tuple(body["scopes"])} if "scopes" in body else {}
        return JSONResponse(
            state.identity.issue_tokens(
                body["user"],
                client_id=body.get("clientId", "sandbox-client"),
                issuer_base=str(request.base_url).rstrip("/"),
                **extra,
            )
        )

    async def revoke(request: Request) -> Response:
        body = await _body(request)
        n = state.identity.revoke_refresh_tokens(body.get("user"), body.get("refreshToken"))
        return JSONResponse({"revoked": n})

    async def expire_access(request: Request) -> Response:
        body = await _body(request)
        return JSONResponse({"expired": state.identity.expire_access_tokens(body.get("user"))})

    async def deny_consent(request: Request) -> Response:
        state.identity.deny_consent = int((await _body(request)).get("count", 1))
        return JSONResponse({"denyConsent": state.identity.deny_consent})

    async def login_user(request: Request) -> Response:
        state.identity.login_user = state.mailbox((await _body(request))["user"]).user.id
        return JSONResponse({"loginUser": state.identity.login_user})

    async def throttle(request: Request) -> Response:
        body = await _body(request)
        count, share = _count(body)
        state.faults.throttle(
            count,
            share=share,
            retry_after=body.get("retryAfter", 1),
            path_prefix=body.get("pathPrefix", "/v1.0/"),
            methods=body.get("methods"),
        )
        return JSONResponse({"ok": True})

    async def errors(request: Request) -> Response:
        body = await _body(request)
        count, share = _count(body)
        state.faults.fail(
            count,
            status=int(body.get("status", 503)),
            share=share,
            retry_after=body.get("retryAfter"),
            path_prefix=body.get("pathPrefix", "/v1.0/"),
            methods=body.get("methods"),
        )
        return JSONResponse({"ok": True})

    async def rate_limit(request: Request) -> Response:
        body = await _body(request)
        state.faults.limit_rate(int(body["maxRequests"]), float(body["perSeconds"]))
        return JSONResponse({"ok": True})

    async def drop(request: Request) -> Response:
        count, share = _count(await _body(request))
        state.faults.drop_notifications(count, share=share)
        return JSONResponse({"ok": True})

    async def clear_faults(request: Request) -> Response:
        state.faults.clear()
        return Response(status_code=204)

    async def lifecycle(request: Request) -> Response:
        body = await _body(request)
        state.send_lifecycle_event(
            request.path_params["sid"], body["event"], pause=bool(body.get("pause", False))
        )
        return Response(status_code=202)

    async def subscriptions(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"value": [
            {**render_subscription(s, base), "paused": s.paused,
             "needsReauthorization": s.needs_reauthorization}
            for s in state.active_subscriptions()
        ]})  # fmt: skip

    async def expire_delta(request: Request) -> Response:
        body = await _body(request)
        return JSONResponse({"expired": state.expire_delta_tokens(body.get("user"))})

    async def advance_clock(request: Request) -> Response:
        now = state.clock.advance(float((await _body(request))["seconds"]))
        return JSONResponse({"now": format_utc(now)})

    async def deliveries(request: Request) -> Response:
        rows = [{**asdict(d), "at": format_utc(d.at)} for d in list(state.notifier.deliveries)]
        return JSONResponse({"value": rows})

    p = "/_sandbox"
    table = [
        (f"{p}/users", add_user, ["POST"]),
        (f"{p}/users/{{user}}/calendars", add_calendar, ["POST"]),
        (f"{p}/users/{{user}}/calendars/{{cal}}", set_calendar, ["PATCH"]),
        (f"{p}/users/{{user}}/calendars/{{cal}}", remove_calendar, ["DELETE"]),
        (f"{p}/users/{{user}}/events", owner_create, ["POST"]),
        (f"{p}/users/{{user}}/events/{{eid}}", owner_update, ["PATCH"]),
        (f"{p}/users/{{user}}/events/{{eid}}", owner_delete, ["DELETE"]),
        (f"{p}/users/{{user}}/events/{{eid}}/damage", damage, ["POST"]),
        (f"{p}/users/{{user}}/invitations", invite, ["POST"]),
        (f"{p}/users/{{user}}/events/{{eid}}/response", respond, ["POST"]),
        (f"{p}/apps", register_app, ["POST"]),
        (f"{p}/tokens", tokens, ["POST"]),
        (f"{p}/oauth/revoke", revoke, ["POST"]),
        (f"{p}/oauth/expire-access-tokens", expire_access, ["POST"]),
        (f"{p}/oauth/deny-consent", deny_consent, ["POST"]),
        (f"{p}/oauth/login-user", login_user, ["POST"]),
        (f"{p}/faults/throttle", throttle, ["POST"]),
        (f"{p}/faults/errors", errors, ["POST"]),
        (f"{p}/faults/rate-limit", rate_limit, ["POST"]),
        (f"{p}/faults/drop-notifications", drop, ["POST"]),
        (f"{p}/faults", clear_faults, ["DELETE"]),
        (f"{p}/subscriptions", subscriptions, ["GET"]),
        (f"{p}/subscriptions/{{sid}}/lifecycle", lifecycle, ["POST"]),
        (f"{p}/delta/expire", expire_delta, ["POST"]),
        (f"{p}/clock/advance", advance_clock, ["POST"]),
        (f"{p}/deliveries", deliveries, ["GET"]),
    ]
    return [Route(path, _guarded(handler), methods=methods) for path, handler, methods in table]
