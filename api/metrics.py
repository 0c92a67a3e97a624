"""Prometheus metrics: HTTP traffic plus gauges read from the database at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models import Conflict, ConflictStatus, Connection, InboxItem

router = APIRouter(tags=["health"])


class DatabaseCollector(Collector):
    """Counts that operators alert on: connections by status, inbox backlog, open conflicts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.engine.connect() as db:
            by_status = db.execute(
                select(Connection.status, func.count()).group_by(Connection.status)
            ).all()
            inbox = db.execute(select(InboxItem.status, func.count()).group_by(InboxItem.status))
            open_conflicts = db.scalar(
                select(func.count()).where(Conflict.status == ConflictStatus.OPEN)
            )
        connections = GaugeMetricFamily(
            "calsync_connections", "Connections by status", labels=["status"]
        )
        for status, count in by_status:
            connections.add_metric([str(status)], count)
        yield connections
        backlog = GaugeMetricFamily(
            "calsync_inbox_items", "Inbox items by status", labels=["status"]
        )
        for item_status, count in inbox:
            backlog.add_metric([str(item_status)], count)
        yield backlog
        yield GaugeMetricFamily(
            "calsync_open_conflicts", "Conflicts not yet acknowledged", value=open_conflicts or 0
        )


class Metrics:
    def __init__(self, engine: Engine) -> None:
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
        self.registry.register(DatabaseCollector(engine))


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
            name = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], name, str(status[0])).inc()
            self.metrics.latency.labels(scope["method"], name).observe(
                time.perf_counter() - started)  # fmt: skip


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
