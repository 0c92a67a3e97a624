"""Beat's dispatch tick with many connections in the database, against the same tick with few.

    python -m bench.dispatch [--connections 10000] [--polled-share 0.1] [--ticks 60]

The database holds `--connections` connections whose slots were booked the way connecting
books them (`models.slots.first_due`); a share of them is polled (CalDAV). Measured:
- the steady state: `--ticks` consecutive ticks, one dispatch interval apart, each enqueuing
  what fell due (real Redis, real Celery publishes): tick time p50 / max, and how evenly the
  reconciliations spread (busiest tick / mean tick);
- a backlog: every reconciliation due at once (after an outage), drained by one tick.
Baseline: the same steady ticks with 100 connections, in the same run.
Needs the PostgreSQL and Redis on 127.0.0.1 (or --database-url / --redis-url).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from sqlalchemy import insert, update

from bench.throughput import create_database, environment, settings_for
from config import Settings
from models import Connection, ConnectionStatus, ExternalCalendar, Provider, Tenant
from models.migrate import upgrade
from models.slots import first_due
from models.types import utcnow
from tasks.context import WorkerContext, build_context
from tasks.maintenance import dispatch_due
from workers.celery_app import create_celery


@dataclass
class Ticks:
    seconds: list[float]
    reconciled: list[int]
    polled: list[int]

    def spread(self) -> float:
        """The busiest tick's reconciliations over the mean tick's (1.0 is perfectly even)."""
        mean = statistics.mean(self.reconciled)
        return max(self.reconciled) / mean if mean else 0.0


def populate(context: WorkerContext, count: int, polled_share: float, rng: random.Random) -> None:
    """`count` connections, each with one synced calendar, in bulk inserts."""
    settings, now = context.settings, utcnow()
    tenants, connections, calendars = [], [], []
    for n in range(count):
        tenant_id, connection_id = uuid.uuid4().hex, uuid.uuid4().hex
        polled = n < count * polled_share
        tenants.append({"id": tenant_id, "wix_instance_id": tenant_id})
        connections.append({
            "id": connection_id, "tenant_id": tenant_id, "schedule_id": f"s{n}",
            "provider": Provider.CALDAV if polled else Provider.GOOGLE,
            "status": ConnectionStatus.SYNCED, "sync_config": {},
            "next_reconcile_at": first_due(now, settings.reconcile_interval, rng),
            "next_poll_at": first_due(now, settings.caldav_poll_interval, rng) if polled else None,
        })  # fmt: skip
        calendars.append({"id": uuid.uuid4().hex, "connection_id": connection_id,
                          "remote_id": "primary", "import_enabled": True})  # fmt: skip
    with context.sessions() as db, db.begin():
        for table, rows in ((Tenant, tenants), (Connection, connections),
                            (ExternalCalendar, calendars)):  # fmt: skip
            for offset in range(0, len(rows), 5000):
                db.execute(insert(table), rows[offset : offset + 5000])


def steady(context: WorkerContext, ticks: int) -> Ticks:
    interval = context.settings.dispatch_interval
    start, out = utcnow(), Ticks([], [], [])
    for n in range(ticks):
        began = time.perf_counter()
        counts = dispatch_due(context, start + timedelta(seconds=interval * n))
        out.seconds.append(time.perf_counter() - began)
        out.reconciled.append(counts["reconciled"])
        out.polled.append(counts["polled"])
        drop_queue(context.settings)
    return out


def backlog(context: WorkerContext) -> tuple[float, int]:
    """Every reconciliation due now; one tick drains them."""
    now = utcnow()
    with context.sessions() as db, db.begin():
        db.execute(update(Connection).values(next_reconcile_at=now - timedelta(hours=1)))
    began = time.perf_counter()
    counts = dispatch_due(context, now)
    seconds = time.perf_counter() - began
    drop_queue(context.settings)
    return seconds, counts["reconciled"]


def drop_queue(settings: Settings) -> None:
    """Nothing consumes the tasks here: drop what the tick enqueued."""
    client = redis.Redis.from_url(settings.coordination_redis_url())
    keys = list(client.scan_iter(f"{settings.broker_key_prefix}*"))
    if keys:
        client.delete(*keys)


def measured(args: argparse.Namespace, count: int) -> tuple[Ticks, tuple[float, int]]:
    settings = settings_for(create_database(args.database_url), args.redis_url, "")
    upgrade(settings.resolved_database_url())
    os.environ.update(environment(settings))
    create_celery(settings)
    context = build_context(settings)
    populate(context, count, args.polled_share, random.Random(count))
    return steady(context, args.ticks), backlog(context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--polled-share", type=float, default=0.1)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    small = measured(args, 100)
    large = measured(args, args.connections)
    print(f"{args.ticks} ticks, one dispatch interval apart; {args.polled_share:.0%} polled")
    print(f"{'connections':>12} {'tick p50':>9} {'tick max':>9} {'reconciles/tick':>16} "
          f"{'spread':>7} {'polls/tick':>11} {'backlog drain':>22}")  # fmt: skip
    for count, (ticks, (drain, drained)) in ((100, small), (args.connections, large)):
        print(f"{count:>12} {statistics.median(ticks.seconds):>8.3f}s "
              f"{max(ticks.seconds):>8.3f}s {statistics.mean(ticks.reconciled):>16.1f} "
              f"{ticks.spread():>7.2f} {statistics.mean(ticks.polled):>11.1f} "
              f"{drain:>9.2f}s for {drained:>6}")  # fmt: skip
    ratio = max(large[0].seconds) / max(statistics.median(small[0].seconds), 1e-9)
    print(f"slowest tick at {args.connections} / median tick at 100: {ratio:.1f}x "
          f"(goal: every steady tick under 1 s)")  # fmt: skip


if __name__ == "__main__":
    main()
