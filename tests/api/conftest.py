"""The API on real PostgreSQL and Redis: a tenant with its key, a second tenant, the Google
sandbox for OAuth, the local calendar store, and a look into the broker's queues."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from harness.pipeline import QUICK_TIMINGS, broker_context, own_broker_prefix, store_served
from harness.processes import Launch, workers
from sqlalchemy import Engine

from api.app import create_app
from api.auth import Caller, create_tenant
from api.external_calendars.connect import NewAccount, connect
from config import Settings
from models import Provider
from models.db import session_scope
from providers.base import CalendarInfo
from sandbox.google import GoogleState
from sandbox.google import create_app as create_google
from sandbox.server import ServedApp, serve_in_thread
from sandbox.store import StoreState
from tasks.context import WorkerContext

GOOGLE_CLIENT = ("calsync-client.apps.example", "calsync-client-secret")
ALICE = "alice@example.com"


@dataclass(frozen=True)
class TenantKey:
    tenant_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def google() -> Iterator[tuple[GoogleState, ServedApp]]:
    state = GoogleState()
    state.add_account(ALICE, name="Alice")
    state.add_client(*GOOGLE_CLIENT, ())  # any loopback redirect URI
    with serve_in_thread(create_google(state)) as served:
        yield state, served


@pytest.fixture
def store() -> Iterator[tuple[StoreState, ServedApp]]:
    yield from store_served()


@pytest.fixture
def api_settings(
    settings: Settings,
    google: tuple[GoogleState, ServedApp],
    store: tuple[StoreState, ServedApp],
) -> Settings:
    base = google[1].base_url
    return derive(settings, **{
        "broker_key_prefix": own_broker_prefix(settings),
        "google_client_id": GOOGLE_CLIENT[0],
        "google_client_secret": GOOGLE_CLIENT[1],
        "google_auth_url": f"{base}/o/oauth2/v2/auth",
        "google_token_url": f"{base}/token",
        "google_api_base_url": f"{base}/calendar/v3/",
        "wix_local_store_url": store[1].base_url,
        "caldav_allow_private": True,
        **QUICK_TIMINGS,
    })  # fmt: skip


def derive(settings: Settings, **changes: Any) -> Settings:
    """Settings with some values changed, validated as if read from the environment."""
    return Settings.model_validate(settings.model_dump() | changes)


@pytest.fixture
def context(api_settings: Settings, engine: Engine) -> Iterator[WorkerContext]:
    yield from broker_context(api_settings)


@pytest.fixture
def client(api_settings: Settings, context: WorkerContext) -> Iterator[TestClient]:
    app = create_app(api_settings)
    app.state.gate = context.gate
    with TestClient(app, base_url=str(api_settings.public_base_url).rstrip("/")) as test_client:
        yield test_client


def make_tenant(engine: Engine, name: str) -> TenantKey:
    with session_scope(engine) as db:
        tenant, key = create_tenant(db, f"instance-{uuid.uuid4().hex[:8]}", name)
        return TenantKey(tenant.id, key)


@pytest.fixture
def tenant(engine: Engine) -> TenantKey:
    return make_tenant(engine, "Studio A")


@pytest.fixture
def other(engine: Engine) -> TenantKey:
    return make_tenant(engine, "Studio B")


Queued = Callable[[str], list[tuple[str, list[Any]]]]


@pytest.fixture
def queued(context: WorkerContext, api_settings: Settings) -> Queued:
    """The tasks waiting in a queue: (task name, args), oldest first."""

    def read(queue: str) -> list[tuple[str, list[Any]]]:
        key = f"{api_settings.broker_key_prefix}{queue}"
        found = []
        for raw in reversed(context.redis.lrange(key, 0, -1)):
            message = json.loads(raw)
            args = json.loads(base64.b64decode(message["body"]))[0]
            found.append((message["headers"]["task"], args))
        return found

    return read


@pytest.fixture
def worker(api_settings: Settings, tmp_path: Path) -> Iterator[Launch]:
    """Real worker processes, each ready when started; all are stopped at the end."""
    yield from workers(api_settings, tmp_path)


HOME = CalendarInfo(remote_id="/alice/home/", name="Home", read_only=False, primary=True)
WORK = CalendarInfo(remote_id="/alice/work/", name="Work", read_only=False)
HOLIDAYS = CalendarInfo(remote_id="/alice/holidays/", name="Holidays", read_only=True)


def seed_connection(
    engine: Engine, settings: Settings, owner: TenantKey, schedule: str = "sched-1",
    provider: Provider = Provider.CALDAV, calendars: tuple[CalendarInfo, ...] = (HOME, WORK,
                                                                               HOLIDAYS),
    server_url: str | None = "https://dav.example/",
) -> str:  # fmt: skip
    """A connection made the way the connect routes make one, without asking any server."""
    account = NewAccount(provider, "alice@example.com", {"username": "alice", "password": "pw"},
                         calendars, server_url=server_url)  # fmt: skip
    with session_scope(engine) as db:
        made = connect(db, Caller(owner.tenant_id, "instance"), schedule, account, settings)
        return made.connection.id
