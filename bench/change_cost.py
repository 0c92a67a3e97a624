"""What one change costs against the size of the calendar it happens in, and what a full
reconciliation of a calendar already in sync costs.

    python -m bench.change_cost [--sizes 100,1000,10000] [--changes 5]

For each size N: a calendar in the local store holding N events, synced once in full to its
Wix side (the store too), so N links exist. Then a person edits one event, and one incremental
run (`tasks.runner.run_calendar`, in this process) applies it. Measured per run: wall time,
database statements (counted on the engine) and provider calls (the run's `api_calls`); the
median over `--changes` edits. The baseline is the smallest calendar: the figures of the
others are printed as its multiple, so a cost that grows with the calendar shows as a ratio
above 1. Then, per size, one full run of the calendar (nothing to do: both sides in sync):
wall time, provider calls and the peak of Python's allocations during the run.
Needs the PostgreSQL and Redis on 127.0.0.1 (or --database-url / --redis-url).
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select, text

from bench.throughput import create_database, settings_for
from models import Connection, ExternalCalendar, Provider, SyncRun, Tenant
from models.crypto import keyring
from models.db import session_scope
from models.migrate import upgrade
from sandbox.server import serve_in_thread
from sandbox.store import StoreState
from sandbox.store import create_app as create_store
from sync.event import CanonicalEvent
from tasks.context import WorkerContext, build_context
from tasks.runner import run_calendar
from workers.celery_app import create_celery

START = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


@dataclass
class Cost:
    seconds: float
    statements: int
    calls: int


class StatementCounter:
    def __init__(self, context: WorkerContext) -> None:
        self.count = 0
        event.listen(context.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


def calendar_of(context: WorkerContext, store: StoreState, store_url: str, size: int) -> str:
    """A local connection whose calendar holds `size` events (the Wix side empty)."""
    name, wix = f"alice-{size}", f"wix-s{size}"
    calendar = store.add_calendar(name)
    store.add_calendar(wix)
    for n in range(size):
        begin = START + timedelta(minutes=30 * n)
        calendar.add(CanonicalEvent(f"Busy {n}", begin, begin + timedelta(minutes=30)))
    with session_scope(context.engine) as db:
        tenant = Tenant(wix_instance_id=uuid.uuid4().hex)
        db.add(tenant)
        db.flush()
        connection = Connection(tenant_id=tenant.id, provider=Provider.LOCAL, sync_config={},
                                schedule_id=f"s{size}", server_url=store_url)  # fmt: skip
        db.add(connection)
        db.flush()
        row = ExternalCalendar(connection_id=connection.id, remote_id=name,
                               import_enabled=True, export_target=True)  # fmt: skip
        db.add(row)
        db.flush()
        return row.id


def one_change(context: WorkerContext, counter: StatementCounter, store: StoreState,
               calendar_id: str, size: int, n: int) -> Cost:  # fmt: skip
    calendar = store.calendar(f"alice-{size}")
    with store.lock:
        target = sorted(calendar.events())[n * size // 7 % size]
        current = calendar.get(target).event
        assert current is not None
        moved = current.start + timedelta(minutes=5)
        calendar.edit(target, CanonicalEvent(f"Moved {n}", moved, moved + timedelta(minutes=30)))
    before, started = counter.count, time.perf_counter()
    outcome = run_calendar(context, calendar_id, "bench")
    seconds, statements = time.perf_counter() - started, counter.count - before
    assert outcome.applied >= 1 and outcome.failed == 0, outcome
    with session_scope(context.engine) as db:
        calls = db.scalar(select(SyncRun.api_calls).where(SyncRun.id == outcome.run_id))
    return Cost(seconds, statements, int(calls or 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    store = StoreState()
    with serve_in_thread(create_store(store)) as served:
        settings = settings_for(create_database(args.database_url), args.redis_url,
                                served.base_url)  # fmt: skip
        settings = settings.model_copy(update={"local_requests_per_second": 100_000.0})
        upgrade(settings.resolved_database_url())
        keyring.use([settings.encryption_keys[0].get_secret_value()])
        create_celery(settings)
        context = build_context(settings)
        counter = StatementCounter(context)
        costs: dict[int, list[Cost]] = {}
        fulls: dict[int, tuple[Cost, float]] = {}
        for size in sizes:
            calendar_id = calendar_of(context, store, served.base_url, size)
            started = time.perf_counter()
            full = run_calendar(context, calendar_id, "bench", full=True)
            assert full.failed == 0 and full.applied >= size, full
            print(f"{size:>6} events: first full sync {time.perf_counter() - started:.1f} s",
                  flush=True)  # fmt: skip
            analyze(context)
            costs[size] = [one_change(context, counter, store, calendar_id, size, n)
                           for n in range(args.changes)]  # fmt: skip
            fulls[size] = full_run(context, calendar_id)
    report(sizes, costs, fulls)


def analyze(context: WorkerContext) -> None:
    """Table statistics after the bulk load, as autovacuum gathers them within a minute: the
    query planner then picks the links' indexes instead of scanning the calendar."""
    with context.engine.connect() as db:
        db.execute(text("ANALYZE links")).close()
        db.commit()


def full_run(context: WorkerContext, calendar_id: str) -> tuple[Cost, float]:
    """A full run of a calendar in sync: its cost, then (a second run, as tracing allocations
    slows Python down) the peak MB Python allocated during it."""
    started = time.perf_counter()
    outcome = run_calendar(context, calendar_id, "bench", full=True)
    seconds = time.perf_counter() - started
    assert outcome.failed == 0, outcome
    with session_scope(context.engine) as db:
        calls = db.scalar(select(SyncRun.api_calls).where(SyncRun.id == outcome.run_id))
    tracemalloc.start()
    run_calendar(context, calendar_id, "bench", full=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Cost(seconds, 0, int(calls or 0)), peak / 1e6


def report(sizes: list[int], costs: dict[int, list[Cost]],
           fulls: dict[int, tuple[Cost, float]]) -> None:  # fmt: skip
    def median(size: int, what: str) -> float:
        return statistics.median(getattr(c, what) for c in costs[size])

    base = sizes[0]
    print("\none change, one incremental run (median):")
    header = ("events", 8), ("wall ms", 9), ("x", 6), ("statements", 11), ("x", 6), ("calls", 6)
    print(" ".join(f"{name:>{width}}" for name, width in header), f"{'x':>6}")
    for size in sizes:
        wall, statements, calls = (median(size, w) for w in ("seconds", "statements", "calls"))
        print(f"{size:>8} {wall * 1000:>9.1f} {wall / median(base, 'seconds'):>6.2f} "
              f"{statements:>11.0f} {statements / median(base, 'statements'):>6.2f} "
              f"{calls:>6.0f} {calls / max(1.0, median(base, 'calls')):>6.2f}")  # fmt: skip
    print("\nfull reconciliation of a calendar in sync:")
    print(f"{'events':>8} {'wall s':>8} {'calls':>6} {'peak MB':>8}")
    for size in sizes:
        cost, peak = fulls[size]
        print(f"{size:>8} {cost.seconds:>8.2f} {cost.calls:>6} {peak:>8.1f}")


if __name__ == "__main__":
    main()
