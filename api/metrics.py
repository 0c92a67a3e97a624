"""Prometheus metrics: HTTP traffic here, and at scrape time the database's gauges
(`api/database_gauges.py`), the workers' calls to calendar systems (`api/provider_calls.py`)
and the broker's queue depths (`api/broker_queues.py`). docs/operations.md lists them all."""

from __future__ import annotations

import re
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.broker_queues import QueueDepthCollector
from api.database_gauges import DatabaseCollector
from api.provider_calls import ProviderCallsCollector
from config import Settings

router = APIRouter(tags=["health"])

# A path parameter's convertor (`{connectionId:record_id}`) is not part of the route's name.
_CONVERTOR = re.compile(r":[^}]*}")


class Metrics:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "calsync_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "calsync_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(engine, settings))
        self.registry.register(ProviderCallsCollector(settings))
        self.registry.register(QueueDepthCollector(settings))


class RequestMetrics:
    """Counts and times every HTTP request by its route template. Plain ASGI rather than
    Starlette's `BaseHTTPMiddleware`, which costs a task group and a stream per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The route template, not the raw path, keeps label cardinality bounded.
            name = _CONVERTOR.sub("}", getattr(scope.get("route"), "path", "unmatched"))
            self.metrics.requests.labels(scope["method"], name, str(status[0])).inc()
            self.metrics.latency.labels(scope["method"], name).observe(
                time.perf_counter() - started)  # fmt: skip


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
