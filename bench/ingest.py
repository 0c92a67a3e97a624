"""Webhook ingest: Google push notifications per second into calsync's API, against a bare
endpoint that does one Redis LPUSH per request, under the same load in the same run.

    python -m bench.ingest [--duration 15] [--connections 32] [--channels 50] [--api-workers 1]

Both servers are uvicorn on loopback (one process each, unless `--api-workers`); the load is
`wrk` (Debian's package) with two threads. Every request is a genuine notification (`exists`,
a new message number) of one of `--channels` live watch channels, in turn. Afterwards the
inbox must hold a row for every notification calsync acknowledged: none lost. Needs the
PostgreSQL and Redis on 127.0.0.1 (or --database-url / --redis-url).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.throughput import create_database, environment, settings_for
from models import Connection, ExternalCalendar, InboxItem, Provider, PushChannel, Tenant
from models.crypto import keyring
from models.db import session_scope
from models.migrate import upgrade
from sandbox.server import free_port

RESULT = re.compile(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)")


@dataclass(frozen=True)
class Load:
    requests: int
    refused: int  # answers that were not 2xx
    p50_ms: float
    p99_ms: float
    seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def bare_app() -> Starlette:
    """What an ingest endpoint costs at the least: take the request, push it to Redis."""
    client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])

    async def hook(request: Request) -> Response:
        client.lpush("bench:ingest", request.headers.get("x-goog-message-number", ""))
        return Response(status_code=200)

    return Starlette(routes=[Route("/webhooks/google", hook, methods=["POST"])])


def seed_channels(count: int) -> list[tuple[str, str]]:
    """A Google connection with `count` synced calendars, each with a live channel."""
    channels = []
    with session_scope() as db:
        tenant = Tenant(wix_instance_id=uuid.uuid4().hex)
        db.add(tenant)
        db.flush()
        connection = Connection(tenant_id=tenant.id, provider=Provider.GOOGLE, schedule_id="s1",
                                sync_config={})  # fmt: skip
        db.add(connection)
        db.flush()
        for n in range(count):
            calendar = ExternalCalendar(connection_id=connection.id, remote_id=f"cal-{n}",
                                        import_enabled=True)  # fmt: skip
            db.add(calendar)
            db.flush()
            channel_id, token = uuid.uuid4().hex, secrets.token_urlsafe(32)
            db.add(PushChannel(calendar_id=calendar.id, provider=Provider.GOOGLE,
                               channel_id=channel_id, resource_id=f"res-{n}", secret=token,
                               expires_at=datetime.now(UTC) + timedelta(days=7)))  # fmt: skip
            channels.append((channel_id, token))
    return channels


def lua_script(channels: list[tuple[str, str]]) -> str:
    table = ",".join(f'{{"{c}","{t}"}}' for c, t in channels)
    return f"""
local channels = {{{table}}}
local threads = 0
local counter = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) base = (tonumber(tid) or 0) * 100000000 end
function request()
  counter = counter + 1
  local c = channels[(counter % #channels) + 1]
  local headers = {{["X-Goog-Channel-ID"] = c[1], ["X-Goog-Channel-Token"] = c[2],
    ["X-Goog-Resource-ID"] = "res", ["X-Goog-Resource-State"] = "exists",
    ["X-Goog-Message-Number"] = tostring(base + counter + 1)}}
  return wrk.format("POST", "/webhooks/google", headers, "")
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.errors.status,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def run_wrk(url: str, script: Path, duration: int, connections: int) -> Load:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    out = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = RESULT.search(out)
    if found is None:
        raise SystemExit(f"wrk said: {out}")
    requests, refused, p50, p99, micros = (int(v) for v in found.groups())
    return Load(requests, refused, p50 / 1000, p99 / 1000, micros / 1e6)


def serve(args: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/webhooks/google", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"the server on {port} did not start: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    settings = settings_for(create_database(args.database_url), args.redis_url, "")
    settings = settings.model_copy(update={"wix_local_store_url": None})
    upgrade(settings.resolved_database_url())
    os.environ.update(environment(settings))
    keyring.use([settings.encryption_keys[0].get_secret_value()])
    channels = seed_channels(args.channels)
    folder = Path(tempfile.mkdtemp(prefix="calsync-ingest-"))
    script = folder / "google.lua"
    script.write_text(lua_script(channels))

    bare_port, api_port = free_port(), free_port()
    env = {**environment(settings), "BENCH_REDIS_URL": args.redis_url,
           "CALSYNC_API_PORT": str(api_port), "CALSYNC_API_WORKERS": str(args.api_workers),
           "CALSYNC_LOG_LEVEL": "WARNING"}  # fmt: skip
    bare = serve([sys.executable, "-m", "uvicorn", "bench.ingest:bare_app", "--factory",
                  "--port", str(bare_port), "--log-level", "warning", "--no-access-log"],
                 env, bare_port, folder / "bare.log")  # fmt: skip
    try:
        baseline = run_wrk(f"http://127.0.0.1:{bare_port}", script, args.duration,
                           args.connections)  # fmt: skip
    finally:
        stop(bare)
    api = serve([sys.executable, "-m", "workers", "api"], env, api_port, folder / "api.log")
    try:
        ours = run_wrk(f"http://127.0.0.1:{api_port}", script, args.duration, args.connections)
    finally:
        stop(api)
    with session_scope() as db:
        recorded = int(db.scalar(select(func.count()).select_from(InboxItem)) or 0)
    report(args, baseline, ours, recorded)
    client = redis.Redis.from_url(args.redis_url)
    client.delete("bench:ingest")
    for key in client.scan_iter(f"{settings.broker_key_prefix}*"):
        client.delete(key)


def report(args: argparse.Namespace, baseline: Load, ours: Load, recorded: int) -> None:
    print(f"wrk, 2 threads, {args.connections} connections, {args.duration} s, "
          f"{args.channels} channels")  # fmt: skip
    for name, load in (("bare LPUSH endpoint", baseline), ("calsync /webhooks/google", ours)):
        print(f"{name:<26} {load.rate:8.0f}/s  p50 {load.p50_ms:6.1f} ms  "
              f"p99 {load.p99_ms:6.1f} ms  non-2xx {load.refused}")  # fmt: skip
    print(f"ratio calsync / bare:      {ours.rate / baseline.rate:8.2f}")
    acknowledged = ours.requests - ours.refused
    print(f"acknowledged {acknowledged}, recorded {recorded}: "
          f"{'none lost' if recorded >= acknowledged else 'LOST'}")  # fmt: skip


if __name__ == "__main__":
    main()
