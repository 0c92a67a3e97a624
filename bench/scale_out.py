"""Scale-out: changes per second on many busy calendars with two worker processes, against one.

    python -m bench.scale_out [--calendars 200] [--changes 1000] [--broker-url URL]
                              [--provider-ms 0]

Path measured: a person adds events to `--calendars` calendars of the local store, round robin
-> signed push notifications -> calsync's API (its own process) -> the broker -> worker
processes (concurrency 1 each) -> busy blocks written to each calendar's Wix side. The store
and the API run in processes of their own, so this process's interpreter is not the limit.
Baseline: the same burst on the same calendars with one worker process, in the same run.
Done is counted from the database: one link per change. `--provider-ms` holds every call to
the store back that long (a real provider answers in 50 to 300 ms). Needs the PostgreSQL and
Redis on 127.0.0.1 (or --database-url / --redis-url; `--broker-url amqp://...` for RabbitMQ).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from bench.processes import api_process, process, store_command, wait_until_up
from bench.throughput import START, create_database, environment, settings_for
from config import Settings
from models import Connection, ExternalCalendar, Link, Provider, PushChannel, Tenant
from models.crypto import keyring
from models.db import session_scope
from models.migrate import upgrade
from providers.local.account import LocalAccount
from sandbox.server import free_port


def connect_calendars(http: httpx.Client, store_url: str, api_url: str, count: int) -> None:
    """`count` connections, each a person's calendar and a Wix schedule in the store, watched."""
    account = LocalAccount(store_url, http)
    for n in range(count):
        for name in (f"alice-{n}", f"wix-s{n}"):
            http.post(f"{store_url}/_store/calendars", json={"name": name}).raise_for_status()
        with session_scope() as db:
            tenant = Tenant(wix_instance_id=uuid.uuid4().hex)
            db.add(tenant)
            db.flush()
            connection = Connection(tenant_id=tenant.id, provider=Provider.LOCAL, sync_config={},
                                    schedule_id=f"s{n}", server_url=store_url)  # fmt: skip
            db.add(connection)
            db.flush()
            calendar = ExternalCalendar(connection_id=connection.id, remote_id=f"alice-{n}",
                                        import_enabled=True, export_target=True)  # fmt: skip
            db.add(calendar)
            db.flush()
            for name in (f"alice-{n}", f"wix-s{n}"):
                made = account.open_channel(name, f"{api_url}/webhooks/local")
                db.add(PushChannel(calendar_id=calendar.id, provider=Provider.LOCAL,
                                   channel_id=made.channel_id, resource_id=name,
                                   secret=made.secret,
                                   expires_at=START + timedelta(days=3650)))  # fmt: skip


def links() -> int:
    with session_scope() as db:
        return int(db.scalar(select(func.count()).select_from(Link)) or 0)


def burst(http: httpx.Client, store_url: str, calendars: int, changes: int, label: str) -> float:
    """Changes per second: `changes` events added round robin, until each has its block."""
    before = links()
    started = time.perf_counter()
    for n in range(changes):
        begin = START + timedelta(days=1, minutes=30 * (n // calendars))
        body = {"event": {"title": f"{label} {n}", "start": begin.isoformat(),
                          "end": (begin + timedelta(minutes=30)).isoformat()}}  # fmt: skip
        http.post(f"{store_url}/_store/calendars/alice-{n % calendars}/events",
                  json=body).raise_for_status()  # fmt: skip
    deadline = time.monotonic() + 600
    while links() < before + changes:
        if time.monotonic() > deadline:
            raise SystemExit(f"{label}: {links() - before} of {changes} changes applied")
        time.sleep(0.1)
    return changes / (time.perf_counter() - started)


def worker_command(name: str) -> list[str]:
    return [sys.executable, "-m", "workers", "worker", "-c", "1", "-n", f"{name}@%h"]


def measure(settings: Settings, args: argparse.Namespace, http: httpx.Client, store_url: str,
            workers: int, label: str) -> float:  # fmt: skip
    """The burst's rate with `workers` worker processes, after a warm-up burst of one change
    per calendar (it also proves every worker connected and working)."""
    env = environment(settings)
    with ExitStack() as running:
        for n in range(workers):
            running.enter_context(process(worker_command(f"{label}{n}"), env, f"{label}{n}"))
        burst(http, store_url, args.calendars, args.calendars, f"{label} warm-up")
        return burst(http, store_url, args.calendars, args.changes, label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calendars", type=int, default=200)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--broker-url", default=None)
    parser.add_argument("--provider-ms", type=int, default=0)
    args = parser.parse_args()
    store_port, api_port = free_port(), free_port()
    store_url = f"http://127.0.0.1:{store_port}"
    settings = settings_for(create_database(args.database_url), args.redis_url, store_url)
    if args.broker_url:
        settings = settings.model_copy(update={"broker_url": args.broker_url,
                                               "redis_url": args.redis_url})  # fmt: skip
    upgrade(settings.resolved_database_url())
    os.environ.update(environment(settings))
    keyring.use([settings.encryption_keys[0].get_secret_value()])
    with process(store_command(store_port, args.provider_ms), os.environ.copy(), "store"), \
         api_process(environment(settings), api_port) as api_url, \
         httpx.Client(timeout=30) as http:  # fmt: skip
        wait_until_up(f"{store_url}/_store/calendars")
        connect_calendars(http, store_url, api_url, args.calendars)
        one = measure(settings, args, http, store_url, 1, "one")
        two = measure(settings, args, http, store_url, 2, "two")
    print(f"{args.calendars} calendars, {args.changes} changes in a burst, round robin; "
          f"every provider call held back {args.provider_ms} ms")  # fmt: skip
    print(f"1 worker process:   {one:8.1f} changes/s")
    print(f"2 worker processes: {two:8.1f} changes/s")
    print(f"ratio 2 / 1:        {two / one:8.2f}  (goal: at least 1.7)")


if __name__ == "__main__":
    main()
