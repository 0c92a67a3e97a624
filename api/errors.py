"""One error shape for every refusal the API gives, close to Wix's error envelope:

    {"message": "scheduleId: Field required",
     "details": {"code": "INVALID_ARGUMENT", "field": "scheduleId",
                 "validationError": {"fieldViolations": [
                     {"field": "scheduleId", "description": "Field required"}]}}}

`details.field` names the offending input (dotted, as the client spelled it) whenever one is to
blame. Request validation answers 400 (Wix's INVALID_ARGUMENT), not FastAPI's 422: the input
breaks a rule the OpenAPI document states. A 400 for a rule the document can only put in words
(a cursor this API did not give out, a time range the wrong way round) has a code of its own,
one of `RULE_CODES`. An unexpected failure is a 500 with a generic message; its details go to
the log, never out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

# Wix's codes for the statuses it documents; ours where Wix is silent.
CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    413: "CONTENT_TOO_LARGE",
    428: "FAILED_PRECONDITION",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

# 400s for input the schema admits, each for a rule about what the value means or finds.
RULE_CODES = {
    "INVALID_CURSOR": "`cursorPaging.cursor` is not a cursor this API gave out",
    "INVALID_TIME_RANGE": "`to` (v1: `end`) is not later than `from` (`start`), or they are "
    "missing without a cursor",
    "INVALID_FILTER": "v1: the stringified `query.filter` does not hold the filter object",
    "ADDRESS_NOT_ALLOWED": "a URL's host does not resolve, or to an address calsync may not call",
    "SERVER_URL_REQUIRED": "the provider needs `serverUrl`",
    "SERVER_NOT_FOUND": "no server of the provider's kind answered at `serverUrl`",
    "INVALID_CREDENTIALS": "the provider's server refused the user name or password",
    "ACCOUNT_REFUSED": "the provider's server refused the account",
    "UNKNOWN_CALENDAR": "the sync configuration names a calendar the account does not have",
    "CALENDAR_READ_ONLY": "the calendar chosen to receive sessions is read-only",
    "CALENDAR_NOT_NAMED": "enabling import or export names no calendar, and none was before",
    "NOTHING_TO_ROTATE": "`rotateWebhookSecret` without a webhook URL",
}
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
NO_NUL = "^[^\\u0000]*$"  # the parameters' text, as `RefuseNul` lets it through


class FieldViolation(BaseModel):
    field: str
    description: str


class ValidationDetails(BaseModel):
    fieldViolations: list[FieldViolation]


class ErrorDetails(BaseModel):
    code: str = Field(description="Machine-readable reason, e.g. `NOT_FOUND`, `INVALID_ARGUMENT`")
    field: str | None = Field(None, description="The request field at fault, when there is one")
    validationError: ValidationDetails | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx JSON answer of the API."""

    message: str
    details: ErrorDetails

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "message": "connectionId: no such connection",
                    "details": {"code": "NOT_FOUND", "field": "connectionId"},
                }
            ]
        }
    }


class ApiError(Exception):
    """Raised anywhere in a request to answer with the error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = f"{field}: {message}" if field and not message.startswith(field) else message
        self.field = field
        self.code = code or CODES.get(status, "ERROR")
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.code, self.field)


def bad_request(message: str, field: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, field=field, code=code)


def not_found(field: str, what: str) -> ApiError:
    return ApiError(404, f"no such {what}", field=field)


def conflict(message: str, field: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(409, message, field=field, code=code)


def precondition(message: str, field: str | None = None) -> ApiError:
    return ApiError(428, message, field=field)


def unavailable(message: str, retry_after: int = 5) -> ApiError:
    return ApiError(503, message, headers={"Retry-After": str(retry_after)})


def error_body(
    message: str,
    code: str,
    field: str | None = None,
    violations: Sequence[FieldViolation] = (),
) -> dict[str, Any]:
    details: dict[str, Any] = {"code": code, "field": field}
    if violations:
        details["validationError"] = {"fieldViolations": [v.model_dump() for v in violations]}
    return {"message": message, "details": details}


def field_path(location: Sequence[int | str]) -> str:
    """FastAPI's error location as the client spelled it: `syncConfig.calendars[0].id`.
    The first element says where (body, query, path, header) and is left out."""
    path = ""
    for part in location[1:]:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or str(location[0] if location else "body")


def violations_of(error: RequestValidationError) -> list[FieldViolation]:
    found = []
    for item in error.errors():
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        found.append(FieldViolation(field=field_path(item.get("loc", ())), description=message))
    return found


async def _api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    violations = violations_of(error)
    first = violations[0] if violations else FieldViolation(field="body", description="invalid")
    message = f"{first.field}: {first.description}"
    body = error_body(message, CODES[400], first.field, violations)
    return JSONResponse(body, status_code=400)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    message = str(error.detail) if error.detail else "request refused"
    code = CODES.get(error.status_code, "ERROR")
    headers = dict(error.headers) if error.headers else None
    if error.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return JSONResponse(error_body(message, code), status_code=error.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the path takes, asked of the routes one method at a time: Starlette's 405
    names only those of the first route on the path (`GET` for a path that takes `PUT` too)."""
    return [method for method in HTTP_METHODS if any(
        route.matches({**request.scope, "method": method})[0] is Match.FULL
        for route in request.app.router.routes
    )]  # fmt: skip


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return JSONResponse(error_body("internal error", CODES[500]), status_code=500)


class RefuseNul:
    """NUL characters cannot reach the database; refuse them in the path and query up front
    (request bodies are checked field by field). Plain ASGI, so a request pays no task group."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or "\x00" in unquote(scope["query_string"].decode("latin-1"))
        ):
            answer = JSONResponse(error_body("NUL characters are not allowed", CODES[400]), 400)
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RefuseNul)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    descriptions = {
        400: "Invalid input; `details.field` names the field. `details.code` is "
        "`INVALID_ARGUMENT`, or for a rule beyond this schema one of: " + ", ".join(RULE_CODES),
        401: "Missing or wrong API key",
        403: "The tenant is disabled",
        404: "Unknown (or another tenant's) connection, schedule or resource",
        409: "Conflicts with the current state",
        428: "Not possible in the current state (e.g. the provider lacks the feature)",
        503: "A dependency (broker, provider) is unavailable; try again",
    }
    return {s: {"model": ErrorBody, "description": descriptions[s]} for s in statuses}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI document tell the truth about errors: request validation answers 400
    with `ErrorBody`, not FastAPI's 422 `HTTPValidationError`, and text parameters refuse NUL."""
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", ()):
                _refuse_nul(parameter.get("schema", {}))
            answers = operation.setdefault("responses", {})
            if answers.pop("422", None) is None and "400" not in answers:
                continue  # nothing to validate
            entry = answers.setdefault("400", {"description": "Invalid input"})
            content = entry.setdefault("content", {})
            content.setdefault("application/json", {"schema": error_ref})
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components.setdefault("ErrorBody", ErrorBody.model_json_schema(
        ref_template="#/components/schemas/{model}"))  # fmt: skip
    return schema


def _refuse_nul(schema: dict[str, Any]) -> None:
    """A parameter's free text may hold anything but NUL (`RefuseNul`)."""
    for branch in schema.get("anyOf", ()):
        _refuse_nul(branch)
    if "items" in schema:
        _refuse_nul(schema["items"])
    free = not ({"pattern", "enum", "format", "const"} & schema.keys())
    if schema.get("type") == "string" and free:
        schema["pattern"] = NO_NUL
