"""Wix's error envelope, `{message, details: {applicationError | validationError}}`."""

from __future__ import annotations

from typing import Any


class WixError(Exception):
    """An error the sandbox answers with, in Wix's envelope and with Wix's usual status codes."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        if self.field is not None:
            violation = {"field": self.field, "description": self.message, "violatedRule": "OTHER"}
            return {
                "message": self.message,
                "details": {"validationError": {"fieldViolations": [violation]}},
            }
        return {
            "message": self.message,
            "details": {"applicationError": {"code": self.code, "description": self.message}},
        }

    def item_error(self) -> dict[str, str]:
        """The `{code, description}` a bulk call puts in a failed item's metadata."""
        return {"code": self.code, "description": self.message}


def invalid(field: str, message: str) -> WixError:
    """400 with a field violation, as Wix reports bad input."""
    return WixError(400, "INVALID_ARGUMENT", message, field=field)


def not_found(kind: str, entity_id: str) -> WixError:
    return WixError(404, f"{kind.upper()}_NOT_FOUND", f"{kind} {entity_id!r} not found")
