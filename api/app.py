"""The HTTP app: webhooks, OAuth callbacks, the External Calendars API, health, metrics and
the status page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import errors, external_calendars, health, metrics, rate_limits, v1, webhooks
from api.external_calendars import aliases
from api.oauth import callback as oauth_callback
from api.status_page import demo as demo_panel
from api.status_page import status_router
from api.status_page.panels import add_panel
from api.webhooks.direct import DirectWebhooks
from config import Settings, get_settings
from models.db import engine_for

DESCRIPTION = """\
calsync mirrors Wix's External Calendars API (v2) and External Calendar Sync API (v1).
Every call sends the tenant's API key: `Authorization: Bearer <key>` (made by
`calsync tenants create`). Errors are `{"message", "details": {"code", "field"}}`.
Operations and fields marked *calsync addition* are not in Wix's API. See docs/api.md.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="calsync",
        version="0.1.0",
        summary="Two-way sync between Wix Bookings and external calendars",
        description=DESCRIPTION,
        lifespan=_lifespan,
        # 413 before a body is read whole: at once for a declared length over it, else as
        # soon as the bytes received pass it (the webhook receivers included).
        max_body_size=settings.max_request_bytes,
    )
    app.state.settings = settings
    app.state.engine = engine_for(settings.resolved_database_url())
    app.state.metrics = metrics.Metrics(app.state.engine, settings)
    app.add_middleware(rate_limits.RateLimitHeaders)
    app.add_middleware(DirectWebhooks, state=app.state)  # inside the metrics and NUL checks
    app.add_middleware(metrics.RequestMetrics, metrics=app.state.metrics)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(webhooks.router)
    app.include_router(external_calendars.router)
    app.include_router(aliases.router)  # Wix's second binding of the same operations
    app.include_router(v1.router)
    app.include_router(oauth_callback.router)
    if settings.demo_control_url:
        add_panel(demo_panel.PANEL)  # before the page's router is built: it mounts the panel's
    app.include_router(status_router())
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    if (open_intake := getattr(app.state, "intake", None)) is not None:
        await asyncio.to_thread(open_intake.close)  # what was acknowledged is recorded first


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary,
            description=app.description, routes=app.routes,
        )  # fmt: skip
        app.openapi_schema = rate_limits.document(errors.document_errors(schema))
    return app.openapi_schema
