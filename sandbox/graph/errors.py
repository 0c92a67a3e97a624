"""Graph-shaped errors: `{"error": {"code", "message", "innerError": {...}}}`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse


class GraphError(Exception):
    """Raised anywhere below a route; the app turns it into a Graph error response."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.headers = headers or {}


def error_body(code: str, message: str, inner_code: str | None = None) -> dict[str, Any]:
    inner: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4()),
    }
    if inner_code:
        inner["code"] = inner_code
    return {"error": {"code": code, "message": message, "innerError": inner}}


def error_response(err: GraphError) -> JSONResponse:
    return JSONResponse(
        error_body(err.code, err.message, err.inner_code), err.status, headers=err.headers
    )


def not_found(what: str = "The specified object was not found in the store.") -> GraphError:
    return GraphError(404, "ErrorItemNotFound", what)


def bad_request(message: str, code: str = "ErrorInvalidRequest") -> GraphError:
    return GraphError(400, code, message)


def access_denied(
    message: str = "Access is denied. Check credentials and try again.",
) -> GraphError:
    return GraphError(403, "ErrorAccessDenied", message)
