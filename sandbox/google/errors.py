"""Google API errors in the documented shape.

`{"error": {"errors": [{"domain", "reason", "message", ["locationType", "location"]}],
"code", "message"}}`. The client library turns these into `HttpError` with
`.error_details`.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    """An error answered to an API caller; raise it anywhere below a route."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location_type: str | None = None,
        location: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location_type = location_type
        self.location = location
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location_type:
            detail["locationType"] = self.location_type
        if self.location:
            detail["location"] = self.location
        return {"error": {"errors": [detail], "code": self.code, "message": self.message}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.code, headers=self.headers)


def bad_request(message: str, reason: str = "invalid", location: str | None = None) -> ApiError:
    return ApiError(
        400, reason, message, location_type="parameter" if location else None, location=location
    )


def not_found(message: str = "Not Found") -> ApiError:
    return ApiError(404, "notFound", message)


def forbidden(message: str = "Forbidden") -> ApiError:
    return ApiError(403, "forbidden", message)


def full_sync_required() -> ApiError:
    return ApiError(
        410,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
        domain="calendar",
        location_type="parameter",
        location="syncToken",
    )


def deleted() -> ApiError:
    return ApiError(410, "deleted", "Resource has been deleted")


def duplicate() -> ApiError:
    return ApiError(409, "duplicate", "The requested identifier already exists.")


def condition_not_met() -> ApiError:
    return ApiError(
        412,
        "conditionNotMet",
        "Precondition Failed",
        location_type="header",
        location="If-Match",
    )


def unauthorized(missing: bool) -> ApiError:
    # Google answers a missing credential with `required`, a bad or expired one with `authError`.
    reason, message = (
        ("required", "Login Required.") if missing else ("authError", "Invalid Credentials")
    )
    return ApiError(
        401,
        reason,
        message,
        location_type="header",
        location="Authorization",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def insufficient_scopes() -> ApiError:
    return ApiError(
        403,
        "insufficientPermissions",
        "Request had insufficient authentication scopes.",
    )


def rate_limited(status: int, reason: str, retry_after: float | None) -> ApiError:
    message = (
        "User Rate Limit Exceeded" if reason == "userRateLimitExceeded" else "Rate Limit Exceeded"
    )
    headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else None
    return ApiError(status, reason, message, domain="usageLimits", headers=headers)


def backend_error(status: int, reason: str = "backendError") -> ApiError:
    message = "Backend Error" if status == 500 else "Service Unavailable"
    return ApiError(status, reason, message)
