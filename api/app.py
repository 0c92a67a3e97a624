"""The HTTP app: webhooks, OAuth callbacks, the External Calendars API, health and metrics."""

from __future__ import annotations

from fastapi import FastAPI

from api import health, metrics, webhooks
from config import Settings, get_settings
from models.db import engine_for


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="calsync",
        version="0.1.0",
        summary="Two-way sync between Wix Bookings and external calendars",
    )
    app.state.settings = settings
    app.state.engine = engine_for(settings.resolved_database_url())
    app.state.metrics = metrics.Metrics(app.state.engine)
    app.middleware("http")(app.state.metrics.middleware)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(webhooks.router)
    return app
