"""Prometheus metrics: HTTP traffic plus gauges read from the database at scrape time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

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

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # The route template, not the raw path, keeps label cardinality bounded.
        name = getattr(route, "path", "unmatched")
        self.requests.labels(request.method, name, str(response.status_code)).inc()
        self.latency.labels(request.method, name).observe(time.perf_counter() - started)
        return response


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
