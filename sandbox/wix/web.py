"""HTTP plumbing shared by the route modules: reading bodies, finding the state, error responses."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.wix.errors import WixError, invalid

if TYPE_CHECKING:
    from sandbox.wix.state import WixState


def wix_state(request: Request) -> WixState:
    state: WixState = request.app.state.wix
    return state


async def read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise invalid("body", "not valid JSON") from exc
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    return body


async def wix_error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WixError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
