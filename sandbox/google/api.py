"""Plumbing shared by the `/calendar/v3/` routes: authentication, injected faults, JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import ApiError
from .grants import Caller
from .state import GoogleState

Handler = Callable[[Request, GoogleState, Caller], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def sandbox_state(request: Request) -> GoogleState:
    state: GoogleState = request.app.state.google
    return state


def api_endpoint(handler: Handler, *, metered: bool = True) -> Endpoint:
    """Wrap a handler: 401 without a valid bearer token, then any injected fault, then the work.
    A request that is not `metered` does not count against the quota (a batch: its calls do)."""

    async def endpoint(request: Request) -> Response:
        state = sandbox_state(request)
        try:
            caller = state.authenticate(request.headers.get("authorization"))
            path = request.url.path
            state.check_faults("api", request.method, path, caller.email, metered=metered)
            return await handler(request, state, caller)
        except ApiError as exc:
            return exc.response()

    return endpoint


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "parseError", "Parse Error") from None


def query_params(request: Request) -> dict[str, list[str]]:
    params = request.query_params
    return {key: params.getlist(key) for key in params}


def resource_response(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    headers = {"ETag": body["etag"]} if "etag" in body else None
    return JSONResponse(body, status_code=status_code, headers=headers)


def empty_response() -> Response:
    return Response(status_code=204)
