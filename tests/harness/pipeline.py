"""The pieces of a loopback pipeline the tests share: the connection pair and its helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from celery import Celery
from fastapi import FastAPI
from sqlalchemy import Engine, func, select

from config import Settings
from config.celery import on_rabbitmq
from models import Connection, ExternalCalendar, Provider, PushChannel, SyncRun, Tenant
from models.db import session_scope
from providers.local.account import LocalAccount
from sandbox.server import ServedApp, serve_in_thread
from sandbox.store import StoreState
from sandbox.store import create_app as create_store
from sync.codec import event_to_dict
from sync.event import CanonicalEvent
from tasks.context import WorkerContext, build_context
from workers.celery_app import create_celery

from . import services
from .clock import days_ahead

NOWHERE = "http://127.0.0.1:9"  # calsync's API, for in-process runs that need no callback

# Tomorrow at 09:00 UTC: inside the sync window whatever day the suite runs.
START = days_ahead(1, 9)


def event_body(title: str, hour: int = 0) -> dict[str, object]:
    begin = START + timedelta(hours=hour)
    return {"event": {"title": title, "start": begin.isoformat(),
                      "end": (begin + timedelta(minutes=30)).isoformat()}}  # fmt: skip


@dataclass
class Pair:
    """One connection whose both sides live in the store: `alice` (external) and the Wix
    schedule's calendar `wix-s1`."""

    store: StoreState
    store_url: str
    calendar_id: str
    connection_id: str

    @property
    def external(self) -> str:
        return "alice"

    @property
    def wix(self) -> str:
        return "wix-s1"

    def person_adds(self, calendar: str, title: str, hour: int = 0) -> str:
        response = httpx.post(f"{self.store_url}/_store/calendars/{calendar}/events",
                              json=event_body(title, hour))  # fmt: skip
        response.raise_for_status()
        return str(response.json()["id"])

    def events(self, calendar: str) -> list[dict[str, object]]:
        response = httpx.get(f"{self.store_url}/_store/calendars/{calendar}/events")
        return list(response.json()["events"])

    def titles(self, calendar: str) -> list[str]:
        return sorted(str(e["event"]["title"]) for e in self.events(calendar))  # type: ignore[index]

    def add_session(self, event: CanonicalEvent) -> str:
        """A session as the Wix side holds it (a series master, or one of its occurrences)."""
        response = httpx.post(f"{self.store_url}/_store/calendars/{self.wix}/events",
                              json={"event": event_to_dict(event)})  # fmt: skip
        response.raise_for_status()
        return str(response.json()["id"])

    def edit_session(self, event_id: str, event: CanonicalEvent) -> None:
        httpx.put(f"{self.store_url}/_store/calendars/{self.wix}/events/{event_id}",
                  json={"event": event_to_dict(event)}).raise_for_status()  # fmt: skip

    def cancel_session(self, event_id: str) -> None:
        httpx.delete(f"{self.store_url}/_store/calendars/{self.wix}/events/{event_id}"
                     ).raise_for_status()  # fmt: skip

    def writes(self, calendar: str, method: str = "POST") -> int:
        log = httpx.get(f"{self.store_url}/_store/requests").json()["requests"]
        path = f"/calendars/{calendar}/events"
        return sum(1 for r in log if r["method"] == method and r["path"].startswith(path)
                   and r["status"] < 300)  # fmt: skip


# Short enough that a test sees a lock expire, a task time out or a retry come round in seconds.
QUICK_TIMINGS = {"calendar_lock_seconds": 5, "broker_visibility_timeout": 20,
                 "task_time_limit": 10, "max_retry_delay": 5}  # fmt: skip


def own_broker_prefix(settings: Settings) -> str:
    """A key prefix of the test's own, so its queues and locks meet no other test's."""
    return f"{settings.broker_key_prefix}{uuid.uuid4().hex[:6]}:"


def store_served() -> Iterator[tuple[StoreState, ServedApp]]:
    """The local calendar store on loopback (fixture body)."""
    state = StoreState()
    with serve_in_thread(create_store(state)) as served:
        yield state, served


def broker_context(settings: Settings) -> Iterator[WorkerContext]:
    """A worker context whose broker keys (and on RabbitMQ, queues) are dropped afterwards
    (fixture body)."""
    app = create_celery(settings)
    context = build_context(settings)
    yield context
    for key in context.redis.scan_iter(f"{settings.broker_key_prefix}*"):
        context.redis.delete(key)
    if on_rabbitmq(str(settings.broker_url)):
        drop_queues(app)
    app.close()
    context.http.close()


def drop_queues(app: Celery) -> None:
    """The test's queues and exchanges, which outlive its workers in the shared virtual host."""
    queues = list(app.amqp.queues.values())
    exchanges = {queue.exchange.name for queue in queues} | {app.conf.event_exchange}
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in queues:
            channel.queue_delete(queue.name)
        for name in exchanges:
            channel.exchange_delete(name)


def serve_context(settings: Settings, api: ServedApp) -> Iterator[WorkerContext]:
    """A worker context for `settings`, which the served API takes on too (fixture body)."""
    context = build_context(settings)
    served: FastAPI = api.server.config.app  # type: ignore[assignment]  # calsync's own app
    served.state.settings = settings
    served.state.gate = context.gate
    yield context
    context.http.close()


def watch(pair: Pair, api: ServedApp, context: WorkerContext, engine: Engine) -> None:
    """Push channels from both store calendars to calsync's webhook."""
    store = LocalAccount(pair.store_url, context.http)
    for name in (pair.external, pair.wix):
        made = store.open_channel(name, f"{api.base_url}/webhooks/local")
        with session_scope(engine) as db:
            db.add(PushChannel(calendar_id=pair.calendar_id, provider=Provider.LOCAL,
                               channel_id=made.channel_id, resource_id=name, secret=made.secret,
                               expires_at=START + timedelta(days=3650)))  # fmt: skip


def broker_drained(context: WorkerContext) -> bool:
    """Nothing waiting, held back or running on the test's broker. Tasks ack late, after they
    published their follow-ups and retries, so when the broker holds no message of the test, no
    run is on its way.

    Redis keeps a message in a queue's list until a worker takes it, then in the unacked hash
    until its ack. RabbitMQ counts it ready, then unacknowledged while a worker holds it
    (reserved, waiting for its countdown, running), and publisher confirms make a follow-up
    count before its send returns. rabbitmqctl reads both counts from the queues themselves
    (about 0.4 s a call). Cheaper signals are not sound: a passive queue declare sees only the
    ready messages, and asking the workers (inspect active, reserved, scheduled) takes a message
    still on its way to a worker, or a late answer, for nothing."""
    settings = context.settings
    if on_rabbitmq(str(settings.broker_url)):
        held = services.queued_messages(str(settings.broker_url))
        return not any(count for name, count in held.items()
                       if name.startswith(settings.broker_key_prefix))  # fmt: skip
    prefix, redis = settings.broker_key_prefix, context.redis
    queued = any(redis.type(key) == b"list" and redis.llen(key)
                 for key in redis.scan_iter(f"{prefix}*"))  # fmt: skip
    return not queued and redis.hlen(f"{prefix}unacked") == 0


def sync_runs(engine: Engine, calendar_id: str) -> int:
    with engine.connect() as db:
        return int(db.scalar(select(func.count()).where(SyncRun.calendar_id == calendar_id)) or 0)


def connect_calendar(engine: Engine, provider: Provider, remote_id: str, *,
                     is_primary: bool = True, **connection: Any) -> str:  # fmt: skip
    """Schedule s1 of a new tenant connected to one calendar, synced both ways (rows only, as
    for runs driven in the test's process); returns the calendar's id."""
    with session_scope(engine) as db:
        tenant = Tenant(wix_instance_id=f"instance-{uuid.uuid4().hex[:6]}")
        db.add(tenant)
        db.flush()
        made = Connection(tenant_id=tenant.id, provider=provider, schedule_id="s1",
                          sync_config={}, **connection)  # fmt: skip
        db.add(made)
        db.flush()
        calendar = ExternalCalendar(connection_id=made.id, remote_id=remote_id,
                                    is_primary=is_primary, import_enabled=True,
                                    export_target=True)  # fmt: skip
        db.add(calendar)
        db.flush()
        return calendar.id
