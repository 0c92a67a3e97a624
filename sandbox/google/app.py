"""The ASGI app: Calendar API v3 under `/calendar/v3/` (and its batch endpoint), OAuth endpoints,
`/_sandbox/` admin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import admin, batch, calendars, events, oauth
from .errors import ApiError
from .state import GoogleState


def create_app(state: GoogleState | None = None) -> Starlette:
    """Serve `state` (a fresh one if None; then the app also shuts its push workers down)."""
    owned = state is None
    google = state or GoogleState()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if owned:
            google.close()

    app = Starlette(
        routes=[*events.routes, *calendars.routes, *batch.routes, *oauth.routes, *admin.routes],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.google = google
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in Google's error shape too."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return ApiError(404, "notFound", "Not Found").response()
    if status == 405:
        return ApiError(405, "httpMethodNotAllowed", "Method Not Allowed").response()
    return JSONResponse({"error": {"code": status, "message": str(exc)}}, status_code=status)
