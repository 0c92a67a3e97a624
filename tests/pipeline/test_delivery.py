"""At least once in, exactly once in effect: real API, real broker, real worker processes."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from harness import services
from harness.pipeline import Pair, broker_drained, event_body, sync_runs, watch
from harness.processes import Launch, wait_until
from sqlalchemy import Engine, func, select

from api.app import create_app
from config import Settings
from models import Connection, ConnectionStatus, ErrorReason, InboxItem, InboxStatus, SyncRun
from models.db import session_scope
from models.types import utcnow
from sandbox.server import ServedApp, serve_in_thread
from tasks.context import WorkerContext, build_context
from tasks.enqueue import request_sync
from tasks.maintenance import sweep
from workers.celery_app import create_celery


def inbox(engine: Engine, status: InboxStatus | None = None) -> int:
    query = select(func.count()).select_from(InboxItem)
    if status is not None:
        query = query.where(InboxItem.status == status)
    with engine.connect() as db:
        return int(db.scalar(query) or 0)


def replay(api: ServedApp, channel_id: str, calendar: str, secret: str, message: int
           ) -> httpx.Response:  # fmt: skip
    body = json.dumps({"calendar": calendar, "message": message}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Store-Channel": channel_id, "X-Store-Signature": signature,
               "Content-Type": "application/json"}  # fmt: skip
    return httpx.post(f"{api.base_url}/webhooks/local", content=body, headers=headers)


def test_the_same_notification_ten_times_is_one_write(
    watched: Pair, api: ServedApp, worker: Launch, engine: Engine
) -> None:
    watched.person_adds(watched.external, "Dentist")
    watched.store.pusher.wait_idle()
    [(channel_id, message, status)] = watched.store.pusher.delivered
    assert status == 200
    channel = watched.store.pusher.channels[channel_id]
    for _ in range(9):  # the provider retries the very same signed notification
        response = replay(api, channel_id, channel.calendar, channel.secret, message)
        assert response.json() == {"duplicate": True}
    assert inbox(engine) == 1
    worker()
    wait_until(lambda: watched.titles(watched.wix) == ["Dentist"], 60, "the block")
    # Our own write comes back as a notification too; every one of them gets closed.
    wait_until(lambda: inbox(engine, InboxStatus.DONE) == inbox(engine), 30, "the inbox to close")
    assert watched.writes(watched.wix) == 1


def test_a_forged_notification_is_refused_and_not_recorded(
    watched: Pair, api: ServedApp, engine: Engine
) -> None:
    channel_id = next(iter(watched.store.pusher.channels))
    forged = replay(api, channel_id, "alice", "not-the-secret", 7)
    unknown = replay(api, "no-such-channel", "alice", "whatever", 7)
    assert (forged.status_code, unknown.status_code) == (401, 401)
    assert inbox(engine) == 0


def test_a_burst_of_200_notifications_is_read_by_one_run(
    watched: Pair, worker: Launch, context: WorkerContext, engine: Engine,
    pipeline_settings: Settings,
) -> None:  # fmt: skip
    with httpx.Client() as client:
        for n in range(200):
            client.post(f"{watched.store_url}/_store/calendars/alice/events",
                        json=event_body(f"Busy {n}", n))  # fmt: skip
    watched.store.pusher.wait_idle()  # every notification delivered and acknowledged
    assert inbox(engine) == 200  # ...each recorded, and one sync task queued for them all
    # Writing 200 blocks may outlast the quick time limit on a busy machine: not tested here.
    worker(pipeline_settings.model_copy(update={"task_time_limit": 120,
                                                "broker_visibility_timeout": 300}))  # fmt: skip
    wait_until(lambda: len(watched.events(watched.wix)) == 200, 120, "200 blocks", step=0.5)
    wait_until(lambda: inbox(engine, InboxStatus.DONE) == inbox(engine), 30, "inbox closed")
    wait_until(lambda: broker_drained(context), 30, "the broker to drain")
    assert sync_runs(engine, watched.calendar_id) == 1, _debug_runs(engine, watched.calendar_id)
    assert watched.writes(watched.wix) == 200


def test_a_task_stays_on_the_broker_until_it_has_run(
    pair: Pair, worker: Launch, context: WorkerContext, engine: Engine
) -> None:
    """What `broker_drained`, and so every "nothing more happened" here, relies on."""
    pair.person_adds(pair.external, "Dentist")
    assert request_sync(context.gate, pair.calendar_id, "reconcile", full=True)
    assert not broker_drained(context)  # waiting in its queue
    pair.store.slow_ms = 1000  # each call of the run takes a second
    worker()
    wait_until(lambda: sync_runs(engine, pair.calendar_id) == 1, 30, "the run to start")
    assert not broker_drained(context)  # taken by the worker, running, not acknowledged yet
    wait_until(lambda: broker_drained(context), 30, "the run to end")
    assert pair.titles(pair.wix) == ["Dentist"]


# On Redis the killed worker's task comes back once the visibility timeout has passed.
@pytest.mark.timings(broker_visibility_timeout=12, max_retry_delay=1)
def test_a_killed_worker_resumes_and_applies_each_change_once(
    pair: Pair, worker: Launch, context: WorkerContext
) -> None:
    for n in range(150):  # three batches of writes
        pair.person_adds(pair.external, f"Busy {n}", hour=n)
    pair.store.slow_ms = 40  # every write takes a while, so the kill lands mid-run
    first = worker()
    assert request_sync(context.gate, pair.calendar_id, "reconcile", full=True)
    wait_until(lambda: len(pair.events(pair.wix)) >= 20, 60, "the run to be under way")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert len(pair.events(pair.wix)) < 150
    pair.store.slow_ms = 0
    worker()
    wait_until(lambda: len(pair.events(pair.wix)) == 150, 120, "all 150 blocks", step=0.5)
    markers = [str(block["marker"]) for block in pair.events(pair.wix)]
    assert len(set(markers)) == 150  # one block per external event, none twice
    assert pair.writes(pair.wix) == 150  # and no write was repeated


# The throwaway server of each broker, started on a given port (0: any), and its URL's path.
Start = Callable[[int], services.Service]
PRIVATE_BROKERS: dict[str, tuple[Start, str]] = {
    "redis": (services.start_private_redis, "/0"),
    "rabbitmq": (services.start_private_rabbitmq, "//"),
}
PrivateBroker = tuple[Settings, list[services.Service], Start]


@pytest.fixture
def private_broker(pipeline_settings: Settings, broker: str) -> Iterator[PrivateBroker]:
    """A broker server of the test's own, of the kind in play, and how to start it again."""
    start, path = PRIVATE_BROKERS[broker]
    running = [start(0)]
    settings = pipeline_settings.model_copy(update={"broker_url": f"{running[0].url}{path}"})
    yield settings, running, start
    for each in running:
        each.stop()


def test_broker_down_the_webhook_is_kept_and_applied_later(
    pair: Pair, worker: Launch, engine: Engine, private_broker: PrivateBroker
) -> None:
    settings, running, start = private_broker
    create_celery(settings)
    context = build_context(settings)
    app = create_app(settings)
    app.state.gate = context.gate
    with serve_in_thread(app) as api:
        watch(pair, api, context, engine)
        worker(settings)
        port = urlsplit(running[0].url).port or 0
        running.pop().stop()  # the broker goes down
        pair.person_adds(pair.external, "During the outage")
        pair.store.pusher.wait_idle()
        assert pair.store.pusher.delivered[-1][2] == 200  # acknowledged: it is recorded
        assert inbox(engine, InboxStatus.RECEIVED) == 1
        running.append(start(port))  # the broker is back
        sweep(context, now=utcnow() + timedelta(minutes=5))
        wait_until(lambda: pair.titles(pair.wix) == ["During the outage"], 90, "applied")


# Retry-After alone sets the pace: the backoff is capped at its 1 s.
@pytest.mark.timings(max_retry_delay=1)
def test_a_429_storm_is_waited_out(pair: Pair, worker: Launch, context: WorkerContext) -> None:
    for n in range(5):
        pair.person_adds(pair.external, f"Busy {n}", hour=n)
    httpx.post(f"{pair.store_url}/_store/faults", json={"status": 429, "times": 4, "retryAfter": 1})
    worker()
    assert request_sync(context.gate, pair.calendar_id, "reconcile", full=True)
    wait_until(lambda: len(pair.events(pair.wix)) == 5, 90, "all changes", step=0.5)
    log = httpx.get(f"{pair.store_url}/_store/requests").json()["requests"]
    throttled = [i for i, request in enumerate(log) if request["status"] == 429]
    assert len(throttled) == 4
    for i in throttled:
        assert log[i + 1]["at"] >= log[i]["at"] + 1.0 - 0.05, (log[i], log[i + 1])


def test_a_revoked_account_stops_with_a_reason(
    pair: Pair, worker: Launch, context: WorkerContext, engine: Engine
) -> None:
    httpx.post(f"{pair.store_url}/_store/faults", json={"status": 401, "times": 1000})
    worker()
    assert request_sync(context.gate, pair.calendar_id, "reconcile", full=True)

    def connection() -> Connection:
        with session_scope(engine) as db:
            found = db.get(Connection, pair.connection_id)
            assert found is not None
            return found

    wait_until(lambda: connection().status is ConnectionStatus.ERROR, 60, "the connection")
    assert connection().error_reason is ErrorReason.TOKEN_REVOKED
    calls = len(httpx.get(f"{pair.store_url}/_store/requests").json()["requests"])
    wait_until(lambda: broker_drained(context), 30, "the run to end and the broker to drain")
    # A retry would have been published before the run's ack: none came.
    assert len(httpx.get(f"{pair.store_url}/_store/requests").json()["requests"]) == calls


def _debug_runs(engine: Engine, calendar_id: str) -> list[tuple[object, ...]]:
    with engine.connect() as db:
        return [
            tuple(r)
            for r in db.execute(
                select(
                    SyncRun.trigger,
                    SyncRun.started_at,
                    SyncRun.finished_at,
                    SyncRun.created,
                    SyncRun.skipped,
                    SyncRun.status,
                )
                .where(SyncRun.calendar_id == calendar_id)
                .order_by(SyncRun.started_at)
            )
        ]


def test_the_echo_of_our_own_write_triggers_no_run(
    watched: Pair, worker: Launch, context: WorkerContext, engine: Engine
) -> None:
    worker()
    watched.person_adds(watched.external, "Dentist")
    wait_until(lambda: watched.titles(watched.wix) == ["Dentist"], 60, "the block")
    watched.store.pusher.wait_idle()  # our write's notification has been delivered too
    wait_until(lambda: inbox(engine, InboxStatus.DONE) == inbox(engine) == 2, 30, "both closed")
    # Every webhook enqueues before it answers: once the broker is drained, a run for the echo
    # would have been recorded.
    wait_until(lambda: broker_drained(context), 30, "the broker to drain")
    assert sync_runs(engine, watched.calendar_id) == 1
