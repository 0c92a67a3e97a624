"""Liveness and readiness: /healthz says the process answers, /readyz that its dependencies do."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from kombu import Connection as BrokerConnection

from models.db import ping as ping_database

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz", summary="Process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Database and broker are reachable",
    responses={503: {"description": "A dependency is unreachable"}},
)
def readyz(request: Request) -> JSONResponse:
    checks = {
        "database": _check(lambda: ping_database(request.app.state.engine)),
        "broker": _check(lambda: _ping_broker(request.app.state.settings.broker_url)),
    }
    ready = all(result == "ok" for result in checks.values())
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


def _check(probe: Any) -> str:
    try:
        probe()
    except Exception as error:  # any failure means "not ready"; say which kind, not the details
        log.warning("readiness check failed", extra={"error": type(error).__name__})
        return f"error: {type(error).__name__}"
    return "ok"


def _ping_broker(url: str | None) -> None:
    if not url:
        raise RuntimeError("no broker configured")
    with BrokerConnection(url, connect_timeout=2) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
