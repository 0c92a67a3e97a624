"""Calendar and event routes under `/v1.0/me/...` and `/v1.0/users/{user}/...`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import delta
from .context import Ctx, api_context, json_body
from .errors import GraphError, bad_request, not_found
from .query import order_rows, parse_expand, parse_filter, select_fields
from .resources import ext_prop_list, render_calendar, render_event, render_user
from .zones import parse_iso

if TYPE_CHECKING:
    from .state import GraphState, Instance

Handler = Callable[[Request], Awaitable[Response]]
_MAX_TOP = 1000


def _calendar_id(ctx: Ctx) -> str | None:
    """None for the default calendar (`/calendar/...`, `/events`, `/calendarView`)."""
    return ctx.request.path_params.get("cal")


def _check_calendar(ctx: Ctx, instance: Instance) -> None:
    cal = _calendar_id(ctx)
    if cal is not None and instance.record.calendar_id != cal:
        raise not_found()


def _render(ctx: Ctx, instance: Instance) -> dict[str, Any]:
    user = ctx.state.mailbox(ctx.user_id).user
    expand = parse_expand(ctx.param("$expand"))
    return render_event(
        instance, user, ctx.zone, expand_props=expand, body_as_text=ctx.body_as_text
    )


def _list(ctx: Ctx, instances: list[Instance], context: str) -> JSONResponse:
    """$filter, $orderby, $top/$skip (nextLink), $select and $expand over rendered events."""
    rows = [(i, _render(ctx, i)) for i in instances]
    if ctx.param("$filter"):
        test = parse_filter(ctx.param("$filter") or "")
        rows = [
            (i, r)
            for i, r in rows
            if test({**r, "singleValueExtendedProperties": ext_prop_list(i)})
        ]
    rendered = [r for _, r in rows]
    if ctx.param("$orderby"):
        rendered = order_rows(rendered, ctx.param("$orderby") or "")
    return _paged(ctx, rendered, context)


def _paged(ctx: Ctx, rendered: list[dict[str, Any]], context: str) -> JSONResponse:
    """One page by $top/$skip (server-side pages of `list_page_size`), with `@odata.nextLink`
    while more remain; $select applied."""
    top, skip = (
        _int_param(ctx, "$top", ctx.state.settings.list_page_size),
        _int_param(ctx, "$skip", 0),
    )
    if top > _MAX_TOP:
        raise bad_request(f"$top may not exceed {_MAX_TOP}.", "ErrorInvalidParameter")
    page = [select_fields(r, ctx.param("$select")) for r in rendered[skip : skip + top]]
    body: dict[str, Any] = {"@odata.context": f"{ctx.base}/v1.0/$metadata#{context}", "value": page}
    if skip + top < len(rendered):
        params = dict(ctx.request.query_params)
        params.update({"$top": str(top), "$skip": str(skip + top)})
        body["@odata.nextLink"] = ctx.link(params)
    return JSONResponse(body)


def _int_param(ctx: Ctx, name: str, default: int) -> int:
    raw = ctx.param(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        raise bad_request(f"Invalid value for {name}: {raw!r}", "ErrorInvalidParameter") from None
    if value < 0:
        raise bad_request(f"Invalid value for {name}: {raw!r}", "ErrorInvalidParameter")
    return value


def _window(ctx: Ctx) -> tuple[Any, Any]:
    start, end = ctx.param("startDateTime"), ctx.param("endDateTime")
    if not start or not end:
        raise delta.missing_window()
    return parse_iso(start), parse_iso(end)


def _event_response(ctx: Ctx, instance: Instance, status: int = 200) -> JSONResponse:
    body = {
        "@odata.context": f"{ctx.base}/v1.0/$metadata#users('{ctx.user_id}')/events/$entity",
        **_render(ctx, instance),
    }
    return JSONResponse(body, status, headers={"ETag": instance.etag})


def build_routes(state: GraphState) -> list[Route]:
    """Each handler is mounted for `/me` and `/users/{user}`."""

    async def me(request: Request) -> Response:
        ctx = api_context(state, request)
        return JSONResponse(render_user(state.mailbox(ctx.user_id).user))

    async def list_calendars(request: Request) -> Response:
        ctx = api_context(state, request)
        box = state.mailbox(ctx.user_id)
        rows = [render_calendar(c, box.user) for c in box.calendars.values()]
        if ctx.param("$filter"):
            rows = [r for r in rows if parse_filter(ctx.param("$filter") or "")(r)]
        return _paged(ctx, rows, "calendars")

    async def create_calendar(request: Request) -> Response:
        ctx = api_context(state, request, write=True)
        body = await json_body(request)
        if not isinstance(body, dict) or not body.get("name"):
            raise bad_request("A calendar needs a name.")
        name = str(body["name"])
        taken = {c.name.casefold() for c in state.mailbox(ctx.user_id).calendars.values()}
        if name.casefold() in taken:  # Exchange folder names are unique (third-party reports)
            raise GraphError(
                409, "ErrorFolderExists", "A folder with the specified name already exists."
            )
        cal = state.add_calendar(ctx.user_id, name)
        return JSONResponse(render_calendar(cal, state.mailbox(ctx.user_id).user), 201)

    async def get_calendar(request: Request) -> Response:
        ctx = api_context(state, request)
        cal = state.calendar(ctx.user_id, _calendar_id(ctx))
        return JSONResponse(render_calendar(cal, state.mailbox(ctx.user_id).user))

    async def list_events(request: Request) -> Response:
        ctx = api_context(state, request)
        return _list(ctx, state.list_events(ctx.user_id, _calendar_id(ctx)), "events")

    async def create_event(request: Request) -> Response:
        ctx = api_context(state, request, write=True)
        body = await json_body(request)
        instance, created = state.create_event(ctx.user_id, body, calendar_id=_calendar_id(ctx))
        if not created and state.settings.duplicate_transaction == "conflict":
            raise GraphError(
                409,
                "ErrorDuplicateTransactionId",
                "An item with the same transactionId already exists.",
            )
        response = _event_response(ctx, instance, 201)
        if not created:
            response.headers["X-Sandbox-Deduplicated"] = "transactionId"
        return response

    async def get_event(request: Request) -> Response:
        ctx = api_context(state, request)
        instance = state.get_instance(ctx.user_id, request.path_params["eid"])
        _check_calendar(ctx, instance)
        if request.headers.get("if-none-match") == instance.etag:
            return Response(status_code=304, headers={"ETag": instance.etag})
        return _event_response(ctx, instance)

    async def patch_event(request: Request) -> Response:
        ctx = api_context(state, request, write=True)
        body = await json_body(request)
        _check_calendar(ctx, state.get_instance(ctx.user_id, request.path_params["eid"]))
        instance = state.update_event(
            ctx.user_id, request.path_params["eid"], body, if_match=request.headers.get("if-match")
        )
        return _event_response(ctx, instance)

    async def delete_event(request: Request) -> Response:
        ctx = api_context(state, request, write=True)
        _check_calendar(ctx, state.get_instance(ctx.user_id, request.path_params["eid"]))
        state.delete_event(
            ctx.user_id, request.path_params["eid"], if_match=request.headers.get("if-match")
        )
        return Response(status_code=204)

    async def calendar_view(request: Request) -> Response:
        ctx = api_context(state, request)
        start, end = _window(ctx)
        view = state.calendar_view(ctx.user_id, _calendar_id(ctx), start, end)
        return _list(ctx, view, "Collection(event)")

    async def instances(request: Request) -> Response:
        ctx = api_context(state, request)
        start, end = _window(ctx)
        found = state.instances(ctx.user_id, request.path_params["eid"], start, end)
        return _list(ctx, found, "Collection(event)")

    async def calendar_delta(request: Request) -> Response:
        ctx = api_context(state, request)
        return delta.delta(ctx, _calendar_id(ctx))

    table: list[tuple[str, Handler, list[str]]] = [
        ("", me, ["GET"]),
        ("/calendars", list_calendars, ["GET"]),
        ("/calendars", create_calendar, ["POST"]),
        ("/calendar", get_calendar, ["GET"]),
        ("/calendars/{cal}", get_calendar, ["GET"]),
    ]
    for prefix in ("", "/calendar", "/calendars/{cal}"):
        table += [
            (f"{prefix}/events", list_events, ["GET"]),
            (f"{prefix}/events", create_event, ["POST"]),
            (f"{prefix}/events/{{eid}}", get_event, ["GET"]),
            (f"{prefix}/events/{{eid}}", patch_event, ["PATCH"]),
            (f"{prefix}/events/{{eid}}", delete_event, ["DELETE"]),
            (f"{prefix}/events/{{eid}}/instances", instances, ["GET"]),
            (f"{prefix}/calendarView", calendar_view, ["GET"]),
            (f"{prefix}/calendarView/delta", calendar_delta, ["GET"]),
        ]
    return [
        Route(f"{owner}{path}", handler, methods=methods)
        for owner in ("/v1.0/me", "/v1.0/users/{user}")
        for path, handler, methods in table
    ]
