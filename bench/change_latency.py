"""Change latency: from a change a person makes in a provider's calendar to the busy block
applied on the Wix side, against a no-op Celery task round trip measured in the same run.

    python -m bench.change_latency [--provider google] [--changes 200] [--gap 0.5]

Path measured (Google): the person creates or moves an event with google-api-python-client in
the Google sandbox -> the sandbox POSTs a bodiless push notification to calsync's API process ->
the API checks channel and token, records it in the inbox and enqueues -> Redis -> the worker
process (concurrency 1) waits out the notification debounce, lists the calendar with its sync
token, plans and writes the block to the Wix side (the local store's `wix-s1` calendar, which
pushes the echo of that write back to the API, as Wix would). Beat runs alongside.

A change counts from just before the person's API call to the modification time of the block in
the store (one wall clock: both sandboxes are served by this process). One change at a time: the
next is made `--gap` seconds after the previous one showed on the Wix side, so the figures are
the latency of a change, not of a queue. The first `--warmup` changes (the connection's first,
full sync among them) are not counted.

Baseline: the same worker process answering a no-op task (`tasks.health.ping`) sent through the
same Redis, one at a time: the floor of handing any work to a worker and getting its answer.
The ratio says how many such round trips one change costs end to end.

A provider plugs in as `bench/latency_<provider>.py` whose `world()` returns a `ProviderWorld`.
PostgreSQL and Redis: the ones on 127.0.0.1 if they answer, else private throwaway instances.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench.throughput import percentile
from config import Settings, load_settings
from models import Connection, ExternalCalendar, Provider, Tenant
from models.crypto import keyring, new_key
from models.db import session_scope
from models.migrate import upgrade
from sandbox.server import free_port, serve_in_thread
from sandbox.store import StoreState
from sandbox.store import create_app as create_store
from sync.event import as_instant
from sync.snapshot import RemoteEvent
from tasks.channels import open_channel
from tasks.context import WorkerContext, build_context
from tasks.health import ping
from tests.harness import services
from tests.harness.env import settings_env
from tests.harness.processes import start, stop
from workers.celery_app import create_celery

WIX_SIDE = "wix-s1"  # the store calendar standing in for schedule s1
POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Connected:
    connection_id: str
    calendar_id: str


@dataclass(frozen=True)
class Expected:
    """What a change should look like on the Wix side: a block with this title and start."""

    title: str
    start: datetime


def applied_blocks(expected: Mapping[str, Expected], blocks: Iterable[RemoteEvent]
                   ) -> dict[str, datetime]:  # fmt: skip
    """When each expected change showed: the modification time of its block."""
    shown = {
        (b.event.title, as_instant(b.event.start)): b.modified
        for b in blocks
        if b.event is not None and b.modified is not None
    }
    found = {cid: shown.get((e.title, e.start)) for cid, e in expected.items()}
    return {cid: at for cid, at in found.items() if at is not None}


class ProviderWorld(Protocol):
    """One provider's sandbox, a person using it, and calsync's connection to it."""

    name: str

    def calsync_settings(self) -> dict[str, Any]:
        """The settings that point calsync at this world's sandbox."""
        ...

    def connect(self, context: WorkerContext, tenant_id: str) -> Connected:
        """A connection of schedule s1 to the person's calendar, its push channel open."""
        ...

    def change(self, n: int) -> str:
        """Make change `n` as the person; its id, `<kind>:<n>` (kind: created, moved, ...)."""
        ...

    def applied(self, blocks: Iterable[RemoteEvent]) -> Mapping[str, datetime]:
        """The changes the Wix side's `blocks` show, each with when its block was written."""
        ...

    def close(self) -> None: ...


def load_world(provider: str) -> ProviderWorld:
    world: ProviderWorld = importlib.import_module(f"bench.latency_{provider}").world()
    return world


@dataclass
class Run:
    settings: Settings
    context: WorkerContext
    store: StoreState
    world: ProviderWorld


def settings_for(database_url: str, redis_url: str, store_url: str, world: ProviderWorld,
                 data_dir: Path) -> Settings:  # fmt: skip
    port = free_port()
    return load_settings(
        database_url=database_url, broker_url=f"{redis_url}/0", data_dir=data_dir,
        broker_key_prefix=f"bench-{uuid.uuid4().hex[:6]}:", encryption_keys=new_key(),
        wix_local_store_url=store_url, api_port=port, public_base_url=f"http://127.0.0.1:{port}",
        log_format="text", log_level="WARNING", **world.calsync_settings(),
    )  # fmt: skip


Processes = list[subprocess.Popen[bytes]]


def start_processes(settings: Settings, logs: Path, concurrency: int) -> Processes:
    """calsync's API, one worker and beat, as `calsync up` runs them."""
    env = settings_env(settings)
    api = start(["api"], env, logs / "api.log")
    health = f"http://127.0.0.1:{settings.api_port}/healthz"
    deadline = time.monotonic() + 30
    while not _answers(health):
        if api.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the API did not start; see {logs / 'api.log'}")
        time.sleep(0.1)
    worker = start(["worker", "-c", str(concurrency), "-n", "bench@%h"], env, logs / "worker.log")
    beat = start(["beat"], env, logs / "beat.log")
    return [api, worker, beat]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def connect(run: Run) -> Connected:
    """The world's connection, and the Wix side watched like the pipeline tests watch it."""
    with session_scope(run.context.engine) as db:
        tenant = Tenant(wix_instance_id=f"bench-{uuid.uuid4().hex[:8]}")
        db.add(tenant)
        db.flush()
        tenant_id = tenant.id
    connected = run.world.connect(run.context, tenant_id)
    with session_scope(run.context.engine) as db:
        connection = db.get(Connection, connected.connection_id)
        calendar = db.get(ExternalCalendar, connected.calendar_id)
        assert connection is not None and calendar is not None
        db.add(open_channel(run.context, connection, calendar, Provider.LOCAL, resource=WIX_SIDE))
    return connected


def ping_round_trips(count: int) -> list[float]:
    found = []
    for n in range(count):
        started = time.perf_counter()
        ping.apply_async(args=[str(n)]).get(timeout=30)
        found.append(time.perf_counter() - started)
    return found


def blocks(store: StoreState) -> list[RemoteEvent]:
    with store.lock:
        return list(store.calendar(WIX_SIDE).events().values())


def one_change(run: Run, n: int, timeout: float) -> tuple[str, float]:
    made = datetime.now(UTC)
    change_id = run.world.change(n)
    deadline = time.monotonic() + timeout
    while (applied := run.world.applied(blocks(run.store)).get(change_id)) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"change {change_id} not on the Wix side after {timeout:g} s")
        time.sleep(POLL_SECONDS)
    return change_id, (applied - made).total_seconds()


def changes(run: Run, args: argparse.Namespace) -> dict[str, float]:
    found: dict[str, float] = {}
    for n in range(args.warmup + args.changes):
        change_id, seconds = one_change(run, n, timeout=60)
        if n >= args.warmup:
            found[change_id] = seconds
        time.sleep(args.gap)
    return found


def summary(values: list[float]) -> str:
    return (f"p50 {statistics.median(values):6.3f} s  p99 {percentile(values, 0.99):6.3f} s  "
            f"mean {statistics.fmean(values):6.3f} s  max {max(values):6.3f} s")  # fmt: skip


def report(run: Run, args: argparse.Namespace, baseline: list[float],
           latencies: dict[str, float]) -> None:  # fmt: skip
    settings, name = run.settings, run.world.name
    print(f"\nchange latency, {name} -> Wix side: {len(latencies)} changes one at a time, "
          f"{args.gap:g} s apart (after {args.warmup} uncounted)")  # fmt: skip
    print(f"API, beat and 1 worker process (concurrency {args.concurrency}); notification "
          f"debounce {settings.notification_debounce_seconds:g} s, max wait "
          f"{settings.notification_max_wait_seconds:g} s")  # fmt: skip
    print(f"no-op Celery task round trip ({len(baseline)}):  {summary(baseline)}")
    values = list(latencies.values())
    print(f"{name} change -> Wix block ({len(values)}):  {summary(values)}")
    for kind in sorted({cid.split(":")[0] for cid in latencies}):
        some = [s for cid, s in latencies.items() if cid.split(":")[0] == kind]
        print(f"  {kind} ({len(some)}):  {summary(some)}")
    p50 = statistics.median(values) / statistics.median(baseline)
    p99 = percentile(values, 0.99) / percentile(baseline, 0.99)
    print(f"ratio change / no-op task round trip:  p50 {p50:.1f}  p99 {p99:.1f}")


def measure(run: Run, args: argparse.Namespace, logs: Path) -> None:
    processes = start_processes(run.settings, logs, args.concurrency)
    try:
        connect(run)
        ping_round_trips(20)  # warm-up: the worker is up and connected
        baseline = ping_round_trips(args.changes)
        latencies = changes(run, args)
    finally:
        for process in reversed(processes):
            stop(process)
    report(run, args, baseline, latencies)
    print(f"(process logs: {logs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--provider", default="google")
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between changes")
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()

    postgres, redis_server = services.postgres(), services.redis_service()
    database = f"calsync_bench_{uuid.uuid4().hex[:8]}"
    store, world = StoreState(), load_world(args.provider)
    logs = Path(tempfile.mkdtemp(prefix="calsync-latency-"))  # the processes' logs stay here
    store.add_calendar(WIX_SIDE)
    try:
        with serve_in_thread(create_store(store)) as served:
            url = services.create_database(postgres.url, database)
            upgrade(url)
            settings = settings_for(url, redis_server.url, served.base_url, world, logs)
            keyring.use([settings.encryption_keys[0].get_secret_value()])
            create_celery(settings)
            run = Run(settings, build_context(settings), store, world)
            try:
                measure(run, args, logs)
            finally:
                _forget(run)
    finally:
        world.close()
        services.drop_database(postgres.url, database)
        postgres.stop()
        redis_server.stop()


def _forget(run: Run) -> None:
    """This run's broker keys go; its database goes with the caller's drop."""
    for key in run.context.redis.scan_iter(f"{run.settings.broker_key_prefix}*"):
        run.context.redis.delete(key)
    run.context.http.close()
    run.context.engine.dispose()


if __name__ == "__main__":
    main()
