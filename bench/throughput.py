"""Pipeline throughput and lag, against a no-op Celery task on the same broker in the same run.

    python -m bench.throughput [--changes 1000] [--paced 200] [--rate 20] [--existing 0]

Path measured: a person adds events to a calendar in the local store -> the store pushes signed
notifications -> calsync's API (its own process) verifies and records them and enqueues ->
Redis -> one worker process (concurrency 1) -> sync run -> busy blocks written to the Wix side
(also in the store, which runs in this process so that the times are read off its events).
Baseline: the same worker process answering no-op tasks sent through the same Redis, as a rate
(many at once) and as a round trip (one at a time). `--existing N`: the calendar already holds
N events, synced once in full before anything is measured (a busy business's calendar).
Needs the PostgreSQL and Redis on 127.0.0.1 (or --database-url / --redis-url).
"""

from __future__ import annotations

import argparse
import atexit
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg2

from bench.processes import api_process, process
from config import Settings, load_settings
from models import Connection, ExternalCalendar, Provider, PushChannel, Tenant
from models.crypto import keyring, new_key
from models.db import session_scope
from models.migrate import upgrade
from providers.local.account import LocalAccount
from sandbox.server import free_port, serve_in_thread
from sandbox.store import StoreState
from sandbox.store import create_app as create_store
from sync.event import CanonicalEvent
from tasks.context import WorkerContext, build_context
from tasks.health import ping
from tasks.runner import run_calendar
from workers.celery_app import create_celery

# Tomorrow 08:00 UTC: inside the default sync window whenever the benchmark runs.
START = (datetime.now(UTC) + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)


@dataclass
class Bench:
    settings: Settings
    context: WorkerContext
    store: StoreState
    store_url: str
    api_url: str
    calendar_id: str


def create_database(server_url: str) -> str:
    """A database of the benchmark's own, dropped when the benchmark ends."""
    name = f"calsync_bench_{uuid.uuid4().hex[:8]}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    atexit.register(_admin, server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def _admin(server_url: str, statement: str) -> None:
    connection = psycopg2.connect(server_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(statement)
    connection.close()


def settings_for(database_url: str, redis_url: str, store_url: str) -> Settings:
    return load_settings(
        database_url=database_url, broker_url=redis_url,
        broker_key_prefix=f"bench-{uuid.uuid4().hex[:6]}:", encryption_keys=new_key(),
        wix_local_store_url=store_url, log_format="text", log_level="WARNING",
    )  # fmt: skip


def environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    for name in ("database_url", "broker_url", "broker_key_prefix", "wix_local_store_url",
                 "log_format", "log_level"):  # fmt: skip
        env[f"CALSYNC_{name.upper()}"] = str(getattr(settings, name))
    env["CALSYNC_ENCRYPTION_KEYS"] = settings.encryption_keys[0].get_secret_value()
    return env


def connect_pair(bench_store: StoreState, store_url: str, settings: Settings) -> str:
    bench_store.add_calendar("alice")
    bench_store.add_calendar("wix-s1")
    with session_scope() as db:
        tenant = Tenant(wix_instance_id=uuid.uuid4().hex)
        db.add(tenant)
        db.flush()
        connection = Connection(tenant_id=tenant.id, provider=Provider.LOCAL, schedule_id="s1",
                                server_url=store_url, sync_config={})  # fmt: skip
        db.add(connection)
        db.flush()
        calendar = ExternalCalendar(connection_id=connection.id, remote_id="alice",
                                    import_enabled=True, export_target=True)  # fmt: skip
        db.add(calendar)
        db.flush()
        return calendar.id


def watch(bench: Bench) -> None:
    store = LocalAccount(bench.store_url, bench.context.http)
    for name in ("alice", "wix-s1"):
        made = store.open_channel(name, f"{bench.api_url}/webhooks/local")
        with session_scope() as db:
            db.add(PushChannel(calendar_id=bench.calendar_id, provider=Provider.LOCAL,
                               channel_id=made.channel_id, resource_id=name, secret=made.secret,
                               expires_at=START + timedelta(days=3650)))  # fmt: skip


def noop_rate(count: int) -> float:
    started = time.perf_counter()
    results = [ping.apply_async(args=[str(n)]) for n in range(count)]
    for result in results:
        result.get(timeout=120)
    return count / (time.perf_counter() - started)


def noop_round_trips(count: int) -> list[float]:
    """Seconds from sending a no-op task to holding its answer, one task at a time."""
    trips = []
    for n in range(count):
        started = time.perf_counter()
        ping.apply_async(args=[f"trip {n}"]).get(timeout=60)
        trips.append(time.perf_counter() - started)
    return trips


def seed(bench: Bench, count: int) -> float:
    """`count` events in the calendar, one full sync of it and the incremental run that reads
    back the echoes of its writes, as a live calendar would have had (in this process); the
    seconds that run took."""
    calendar = bench.store.calendar("alice")
    for n in range(count):
        begin = START + timedelta(days=2, minutes=30 * n)
        with bench.store.lock:
            calendar.add(CanonicalEvent(f"existing {n}", begin, begin + timedelta(minutes=30)))
    outcome = run_calendar(bench.context, bench.calendar_id, "bench", full=True)
    assert outcome.failed == 0, outcome
    started = time.perf_counter()
    outcome = run_calendar(bench.context, bench.calendar_id, "bench")
    assert outcome.failed == 0 and outcome.applied == 0, outcome
    return time.perf_counter() - started


def add_event(client: httpx.Client, store_url: str, title: str, hour: int) -> None:
    begin = START + timedelta(hours=hour)
    body = {"event": {"title": title, "start": begin.isoformat(),
                      "end": (begin + timedelta(minutes=30)).isoformat()}}  # fmt: skip
    client.post(f"{store_url}/_store/calendars/alice/events", json=body).raise_for_status()


def blocks(bench: Bench) -> dict[str, datetime]:
    with bench.store.lock:
        events = bench.store.calendar("wix-s1").events().values()
        return {r.event.title: r.modified for r in events if r.event and r.modified}


def sources(bench: Bench) -> dict[str, datetime]:
    with bench.store.lock:
        events = bench.store.calendar("alice").events().values()
        return {r.event.title: r.modified for r in events if r.event and r.modified}


def wait_for(bench: Bench, prefix: str, count: int, timeout: float) -> None:
    """Until `count` blocks whose titles start with `prefix` are written."""
    deadline = time.monotonic() + timeout
    while (done := sum(title.startswith(prefix) for title in blocks(bench))) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {done} of {count} changes applied in {timeout}s")
        time.sleep(0.05)


def burst(bench: Bench, count: int, offset: int) -> float:
    """Changes per second for `count` events added as fast as a client can."""
    started = time.perf_counter()
    with httpx.Client() as client:
        for n in range(count):
            add_event(client, bench.store_url, f"burst {n}", offset + n)
    wait_for(bench, "burst ", count, timeout=300)
    return count / (time.perf_counter() - started)


def paced(bench: Bench, count: int, rate: float, offset: int) -> list[float]:
    """Lag of each change (source modified -> block written), one change every 1/rate s."""
    with httpx.Client() as client:
        for n in range(count):
            add_event(client, bench.store_url, f"paced {n}", offset + n)
            time.sleep(1 / rate)
    wait_for(bench, "paced ", count, timeout=300)
    made, written = sources(bench), blocks(bench)
    return [(written[t] - made[t]).total_seconds() for t in made if t.startswith("paced")]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--paced", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--existing", type=int, default=0)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    store = StoreState()
    with serve_in_thread(create_store(store)) as store_served:
        settings = settings_for(create_database(args.database_url), args.redis_url,
                                store_served.base_url)  # fmt: skip
        upgrade(settings.resolved_database_url())
        os.environ.update(environment(settings))  # this process's default settings, too
        keyring.use([settings.encryption_keys[0].get_secret_value()])
        create_celery(settings)
        context = build_context(settings)
        worker = [sys.executable, "-m", "workers", "worker", "-c", "1"]
        with process(worker, environment(settings), "worker"), \
             api_process(environment(settings), free_port()) as api_url:  # fmt: skip
            calendar_id = connect_pair(store, store_served.base_url, settings)
            bench = Bench(settings, context, store, store_served.base_url, api_url,
                          calendar_id)  # fmt: skip
            echoes = seed(bench, args.existing)
            watch(bench)
            noop_rate(50)  # warm-up: the worker is up and connected
            baseline = noop_rate(args.changes)
            trips = noop_round_trips(100)
            changes = burst(bench, args.changes, 0)
            lags = paced(bench, args.paced, args.rate, args.changes)
    report(args, baseline, changes, lags, trips, settings.notification_debounce_seconds)
    print(f"reading back the echoes of the first sync's {args.existing} writes: {echoes:.2f} s")


def report(args: argparse.Namespace, baseline: float, changes: float, lags: list[float],
           trips: list[float], debounce: float) -> None:  # fmt: skip
    print(f"calendar already holding {args.existing} events")
    print(f"no-op Celery task, 1 worker process:   {baseline:8.1f} tasks/s")
    print(f"no-op round trip, one at a time:       p50 {statistics.median(trips) * 1000:.1f} ms, "
          f"p99 {percentile(trips, 0.99) * 1000:.1f} ms")  # fmt: skip
    print(f"calsync pipeline, 1 worker process:    {changes:8.1f} changes/s "
          f"({args.changes} changes in a burst)")  # fmt: skip
    print(f"ratio pipeline / no-op task:           {changes / baseline:8.2f}")
    print(f"lag, {args.paced} changes at {args.rate:g}/s:  p50 {statistics.median(lags):.3f} s, "
          f"p99 {percentile(lags, 0.99):.3f} s")  # fmt: skip
    p50 = statistics.median(lags) / (statistics.median(trips) + debounce)
    p99 = percentile(lags, 0.99) / (percentile(trips, 0.99) + debounce)
    print(f"lag / (round trip + {debounce:g} s debounce):  p50 {p50:.1f}x, p99 {p99:.1f}x")


if __name__ == "__main__":
    main()
