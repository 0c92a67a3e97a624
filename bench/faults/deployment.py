"""One row's calsync, private to it: a durable Redis, a fresh database on the matrix's private
PostgreSQL, the local store as both calendar systems (served in this process, so the tally reads
it directly), and the API, a worker and beat as processes of their own, as `calsync up` runs
them, each of which a fault may SIGKILL and start again. Like `calsync up`'s supervisor (or
Kubernetes), the deployment starts again a process that dies by itself, and counts it."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from bench.processes import wait_until_up
from config import Settings, load_settings
from models import Connection, ExternalCalendar, Provider, Tenant
from models.crypto import keyring
from models.db import session_scope
from models.migrate import upgrade
from models.types import utcnow
from sandbox.server import free_port, serve_in_thread
from sandbox.store import StoreState
from sandbox.store import create_app as create_store
from tasks.channels import open_channel
from tasks.context import WorkerContext, build_context
from tests.harness import services
from tests.harness.env import settings_env
from tests.harness.pipeline import QUICK_TIMINGS
from tests.harness.processes import ALL_QUEUES, kill, start, start_worker

EXTERNAL, WIX = "alice", "wix-s1"  # the staff member's calendar and schedule s1's, in the store

# Beat's periodic work as often as the settings allow, so that what push missed is repaired
# within a row: a reconciliation every minute, the dispatcher and the inbox sweep every few s.
QUICK_BEAT = {"dispatch_interval": 5, "reconcile_interval": 60, "inbox_sweep_after": 5}
# A run may take 15 s before its soft time limit (QUICK_TIMINGS' 5 s cuts the long run that
# follows a fault, which production's 840 s never would); redelivery 40 s after a worker died.
ROOMY_RUNS = {"task_time_limit": 30, "broker_visibility_timeout": 40}


@dataclass
class Deployment:
    settings: Settings
    context: WorkerContext
    store: StoreState
    redis: services.DurableRedis
    postgres: services.Service
    logs: Path
    calendar_id: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: int = 0
    crashed: list[str] = field(default_factory=list)  # roles whose process died by itself
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def restart(self, role: str) -> None:
        """SIGKILL the role's process and start a new one."""
        with self._lock:
            self.kill(role)
            self.start(role)

    def supervise(self) -> None:
        """Until the deployment stops: start again whatever process exited on its own."""
        while not self._stopping.wait(0.5):
            with self._lock:
                for role, process in list(self.processes.items()):
                    if process.poll() is not None:
                        self.crashed.append(role)
                        self.start(role, ready=False)

    def start(self, role: str, ready: bool = True) -> None:
        """The role's process; with `ready`, once it is up (the API answers /healthz, a worker
        a ping). A supervisor does not wait: what it starts may die again, Redis may be down."""
        self.starts += 1
        log, name = self.logs / f"{role}-{self.starts}.log", f"w{self.starts}"
        if role == "worker" and ready:
            self.processes[role] = start_worker(self.settings, log, name)
            return
        command = ["worker", "-c", "1", "-Q", ALL_QUEUES, "-n", f"{name}@%h"]
        args = command if role == "worker" else [role]
        self.processes[role] = start(args, settings_env(self.settings), log)
        if role == "api" and ready:
            wait_until_up(f"http://127.0.0.1:{self.settings.api_port}/healthz")

    def kill(self, role: str) -> None:
        kill(self.processes.pop(role))

    def stop_all(self) -> None:
        self._stopping.set()
        with self._lock:
            for role in list(self.processes):
                self.kill(role)


def row_settings(database_url: str, redis_url: str, store_url: str, key: str, logs: Path,
                 log_level: str) -> Settings:  # fmt: skip
    port = free_port()
    return load_settings(
        database_url=database_url, broker_url=f"{redis_url}/0", data_dir=logs,
        broker_key_prefix="faults:", encryption_keys=key, wix_local_store_url=store_url,
        api_port=port, public_base_url=f"http://127.0.0.1:{port}", log_format="text",
        log_level=log_level, **{**QUICK_TIMINGS, **ROOMY_RUNS}, **QUICK_BEAT,
    )  # fmt: skip


@contextmanager
def deployed(postgres: services.Service, store: StoreState, key: str, logs: Path,
             log_level: str = "WARNING") -> Iterator[Deployment]:  # fmt: skip
    """A row's deployment, connected and watched on both sides, its processes running."""
    database = f"calsync_faults_{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        served = stack.enter_context(serve_in_thread(create_store(store)))
        redis = services.DurableRedis()
        stack.callback(redis.stop)
        url = services.create_database(postgres.url, database)
        stack.callback(services.drop_database, postgres.url, database)
        upgrade(url)
        keyring.use([key])
        settings = row_settings(url, redis.url, served.base_url, key, logs, log_level)
        context = build_context(settings)
        stack.callback(context.engine.dispose)
        stack.callback(context.http.close)
        deployment = Deployment(settings, context, store, redis, postgres, logs)
        stack.callback(deployment.stop_all)
        for role in ("api", "beat", "worker"):
            deployment.start(role)
        deployment.calendar_id = connect(deployment)
        threading.Thread(target=deployment.supervise, daemon=True).start()
        yield deployment


def connect(deployment: Deployment) -> str:
    """Schedule s1 connected to `alice`, both store calendars pushing to the API, its next
    reconciliation booked an interval on, as after a connection's first sync: no row is
    rescued by a reconciliation that happens to fall in its burst."""
    store = deployment.store
    store.add_calendar(EXTERNAL)
    store.add_calendar(WIX)
    context = deployment.context
    with session_scope(context.engine) as db:
        tenant = Tenant(wix_instance_id=f"faults-{uuid.uuid4().hex[:8]}")
        db.add(tenant)
        db.flush()
        connection = Connection(tenant_id=tenant.id, provider=Provider.LOCAL, schedule_id="s1",
                                server_url=context.settings.wix_local_store_url, sync_config={},
                                next_reconcile_at=utcnow() + timedelta(
                                    seconds=context.settings.reconcile_interval))  # fmt: skip
        db.add(connection)
        db.flush()
        calendar = ExternalCalendar(connection_id=connection.id, remote_id=EXTERNAL,
                                    import_enabled=True, export_target=True)  # fmt: skip
        db.add(calendar)
        db.flush()
        db.add(open_channel(context, connection, calendar))
        db.add(open_channel(context, connection, calendar, Provider.LOCAL, resource=WIX))
        return calendar.id
