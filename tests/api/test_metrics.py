"""/metrics as a dashboard reads it: the workers' calls to calendar systems (counts by status,
latency) carried across processes, sync lag, queue depth, dead letters, open conflicts and push
channels about to lapse."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import redis
from conftest import TenantKey, seed_connection
from fastapi.testclient import TestClient
from harness.pipeline import drop_queues
from harness.processes import Launch, wait_until
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select

from api.app import create_app
from config import Settings
from config.metrics import BUCKETS
from models import (
    ChannelStatus,
    Conflict,
    DeadLetter,
    DeadLetterStatus,
    ExternalCalendar,
    InboxItem,
    InboxStatus,
    Provider,
    PushChannel,
)
from models.db import session_scope
from models.types import utcnow
from providers.base import CalendarInfo
from providers.local.calendar import LocalCalendar
from sandbox.server import ServedApp
from sandbox.store import StoreState
from sync.side import Side
from tasks.context import WorkerContext
from tasks.enqueue import SYNC_CALENDAR, send
from tasks.provider_calls import ProviderCalls, metered_calendar
from workers.celery_app import create_celery

ALICE = CalendarInfo(remote_id="alice", name="Alice", read_only=False)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}  # fmt: skip


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def calls(samples: Samples, provider: str, operation: str, status: str = "ok") -> float:
    found = value(samples, "calsync_provider_calls_total", provider=provider,
                  operation=operation, status=status)  # fmt: skip
    return found or 0.0


@pytest.fixture
def local_calendar(
    engine: Engine, api_settings: Settings, tenant: TenantKey, store: tuple[StoreState, ServedApp]
) -> str:  # fmt: skip
    """A `local` connection's calendar (alice in the store) and its Wix side (wix-s1)."""
    state, served = store
    state.add_calendar("alice")
    state.add_calendar("wix-s1")
    connection_id = seed_connection(engine, api_settings, tenant, "s1", Provider.LOCAL, (ALICE,),
                                    server_url=served.base_url)  # fmt: skip
    with session_scope(engine) as db:
        found = db.scalar(select(ExternalCalendar.id).where(
            ExternalCalendar.connection_id == connection_id))  # fmt: skip
        assert found is not None
        return found


def test_a_workers_calls_to_calendar_systems_are_counted_and_timed(
    client: TestClient, context: WorkerContext, worker: Launch, local_calendar: str,
    store: tuple[StoreState, ServedApp], tenant: TenantKey,
) -> None:  # fmt: skip
    worker()
    assert send(SYNC_CALENDAR, [local_calendar, "reconcile", True])
    wait_until(lambda: calls(scrape(client), "local", "list_changes") >= 1
               and calls(scrape(client), "wix", "list_changes") >= 1, 30,
               "both sides' listings on /metrics")  # fmt: skip
    samples = scrape(client)
    for provider in ("local", "wix"):
        pair = {"provider": provider, "operation": "list_changes"}
        count = value(samples, "calsync_provider_call_seconds_count", **pair)
        assert count == calls(samples, provider, "list_changes")
        assert (value(samples, "calsync_provider_call_seconds_sum", **pair) or 0) > 0
        buckets = [value(samples, "calsync_provider_call_seconds_bucket", le=str(bound), **pair)
                   for bound in (*BUCKETS, "+Inf")]  # fmt: skip
        assert buckets == sorted(buckets) and buckets[-1] == count  # type: ignore[type-var]

    # The store refuses the next request as a provider over its quota would.
    httpx.post(f"{store[1].base_url}/_store/faults", json={"status": 429, "retryAfter": 1})
    assert send(SYNC_CALENDAR, [local_calendar, "reconcile", True])

    def throttled() -> float:
        samples = scrape(client)
        return sum(calls(samples, provider, operation, "throttled")
                   for provider in ("local", "wix") for operation in ("list_changes", "get"))

    wait_until(lambda: throttled() == 1, 30, "the throttled call on /metrics")
    lines = client.get("/metrics").text.splitlines()
    provider_lines = [line for line in lines if line.startswith("calsync_provider_")]
    for private in (local_calendar, tenant.tenant_id, store[1].base_url, "alice", "wix-s1"):
        assert not any(private in line for line in provider_lines), private


def test_a_metrics_store_that_cannot_be_reached_never_fails_a_call(
    store: tuple[StoreState, ServedApp], context: WorkerContext, client: TestClient,
) -> None:  # fmt: skip
    state, served = store
    state.add_calendar("alice")
    unreachable = redis.Redis(port=1, socket_connect_timeout=0.2)
    tallies = ProviderCalls(unreachable, context.settings.broker_key_prefix, flush_every=0)
    calendar = metered_calendar(LocalCalendar(served.base_url, "alice", context.http), "local",
                                tallies)  # fmt: skip
    assert calendar.list_changes(None).complete  # its flush failed, quietly
    assert calls(scrape(client), "local", "list_changes") == 0
    tallies.client = context.redis  # Redis is back
    tallies.flush()
    assert calls(scrape(client), "local", "list_changes") == 1  # kept for a later flush


def test_lag_dead_letters_conflicts_and_channels(
    client: TestClient, engine: Engine, api_settings: Settings, tenant: TenantKey,
) -> None:  # fmt: skip
    connection_id = seed_connection(engine, api_settings, tenant)
    now = utcnow()
    with session_scope(engine) as db:
        calendar_id = db.scalars(select(ExternalCalendar.id).where(
            ExternalCalendar.connection_id == connection_id)).first()  # fmt: skip
        assert calendar_id is not None
        for key, waited in (("a", 1), ("b", 2), ("c", 9)):
            db.add(InboxItem(provider="local", idempotency_key=key, calendar_id=calendar_id,
                             status=InboxStatus.DONE, received_at=now - timedelta(seconds=waited),
                             processed_at=now))  # fmt: skip
        db.add(InboxItem(provider="local", idempotency_key="old", status=InboxStatus.DONE,
                         received_at=now - timedelta(hours=2, seconds=50),
                         processed_at=now - timedelta(hours=2)))  # fmt: skip
        db.add(InboxItem(provider="local", idempotency_key="d", calendar_id=calendar_id,
                         status=InboxStatus.ENQUEUED, received_at=now - timedelta(seconds=40)))
        for change, status in (("k1", DeadLetterStatus.PARKED), ("k2", DeadLetterStatus.FAILING)):
            db.add(DeadLetter(connection_id=connection_id, calendar_id=calendar_id,
                              change_key=change, error="refused", status=status))  # fmt: skip
        db.add(Conflict(connection_id=connection_id, field="title", policy="wix_wins",
                        winner=Side.WIX))  # fmt: skip
        for channel, expires, status in (
            ("due", now + timedelta(hours=1), ChannelStatus.ACTIVE),
            ("lapsed", now - timedelta(minutes=5), ChannelStatus.ACTIVE),
            ("later", now + timedelta(days=7), ChannelStatus.ACTIVE),
            ("stopped", now - timedelta(days=1), ChannelStatus.STOPPED),
        ):
            db.add(PushChannel(calendar_id=calendar_id, provider="google", channel_id=channel,
                               expires_at=expires, status=status))  # fmt: skip
    samples = scrape(client)
    assert 40 <= (value(samples, "calsync_oldest_waiting_change_seconds") or 0) < 100
    lag = {quantile: value(samples, "calsync_sync_lag_seconds", quantile=quantile)
           for quantile in ("0.5", "0.95", "1.0")}  # fmt: skip
    assert lag["0.5"] == pytest.approx(2, abs=0.5)
    assert lag["0.95"] == lag["1.0"] == pytest.approx(9, abs=0.5)  # not the 2 h old one
    assert value(samples, "calsync_dead_letters", status="PARKED") == 1
    assert value(samples, "calsync_dead_letters", status="FAILING") == 1
    assert value(samples, "calsync_open_conflicts") == 1
    assert value(samples, "calsync_push_channels_expiring") == 1
    assert value(samples, "calsync_push_channels_expired") == 1
    assert -400 < (value(samples, "calsync_push_channel_next_expiry_seconds") or 0) <= -299


def test_queue_depth_on_redis(client: TestClient, context: WorkerContext) -> None:
    for calendar in ("c1", "c2"):
        assert send(SYNC_CALENDAR, [calendar, "reconcile", True])
    samples = scrape(client)
    assert value(samples, "calsync_queue_messages", queue="sync") == 2
    assert value(samples, "calsync_queue_messages", queue="ingest") == 0
    assert value(samples, "calsync_queue_unacked_messages") == 0


@pytest.fixture
def on_rabbitmq(api_settings: Settings, rabbitmq_vhost: str) -> Iterator[Settings]:
    settings = Settings.model_validate(api_settings.model_dump() | {"broker_url": rabbitmq_vhost})
    app = create_celery(settings)
    yield settings
    drop_queues(app)
    app.close()


def test_queue_depth_on_rabbitmq(on_rabbitmq: Settings, engine: Engine) -> None:
    with TestClient(create_app(on_rabbitmq)) as client:
        assert value(scrape(client), "calsync_queue_messages", queue="sync") is None  # not yet
        assert send(SYNC_CALENDAR, ["c1", "reconcile", True])  # declares the queue
        wait_until(lambda: value(scrape(client), "calsync_queue_messages", queue="sync") == 1,
                   10, "the message counted")  # fmt: skip
