"""The fields Wix's clients read (issue 19): a connection's `userId` and `appId`, and its
imported events' owner (`scheduleOwnerId`, `scheduleOwnerName`, the `userIds` filter), read
from the Wix sandbox's schedule by the worker's task, then served by the API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import TenantKey, derive, seed_connection
from fastapi.testclient import TestClient
from harness.pipeline import broker_context
from sqlalchemy import Engine
from test_api_events import RANGE, add_links, on, seen

from api.app import create_app
from config import Settings
from models import Side, Tenant
from models.db import session_scope
from sandbox.server import ServedApp, serve_in_thread
from sandbox.wix import WixState
from sandbox.wix import create_app as create_wix
from tasks.context import WorkerContext
from tasks.schedule_owner import learn_owner

V2 = "/bookings/v2/external-calendars"
ALICE_USER, BOB_USER = (
    "76570209-aaaa-4bbb-8ccc-000000000001",
    "76570209-aaaa-4bbb-8ccc-000000000002",
)


@dataclass
class Wix:
    state: WixState
    served: ServedApp
    app_id: str
    instance_id: str


@pytest.fixture
def wix(engine: Engine, tenant: TenantKey) -> Iterator[Wix]:
    """The sandbox with calsync's app installed on the tenant's site."""
    state = WixState()
    app = state.add_app()
    with session_scope(engine) as db:
        row = db.get(Tenant, tenant.tenant_id)
        assert row is not None
        instance_id = row.wix_instance_id
    state.install(app.app_id, instance_id=instance_id)
    with serve_in_thread(create_wix(state)) as served:
        yield Wix(state, served, app.app_id, instance_id)
    state.close()


@pytest.fixture
def wix_settings(api_settings: Settings, wix: Wix) -> Settings:
    return derive(api_settings, wix_local_store_url=None, wix_app_id=wix.app_id,
                  wix_app_secret=wix.state.app(wix.app_id).secret,
                  wix_api_base_url=wix.served.base_url)  # fmt: skip


@pytest.fixture
def wix_context(wix_settings: Settings) -> Iterator[WorkerContext]:
    yield from broker_context(wix_settings)


@pytest.fixture
def wix_client(wix_settings: Settings, wix_context: WorkerContext) -> Iterator[TestClient]:
    app = create_app(wix_settings)
    app.state.gate = wix_context.gate
    with TestClient(app) as test_client:
        yield test_client


def staff(wix: Wix, name: str, user: str | None) -> str:
    return str(wix.state.add_schedule(wix.instance_id, name, owner_user_id=user)["id"])


def connection_of(client: TestClient, tenant: TenantKey, connection_id: str) -> dict[str, Any]:
    answer = client.get(f"{V2}/connections/{connection_id}", headers=tenant.headers)
    assert answer.status_code == 200, answer.text
    connection: dict[str, Any] = answer.json()["connection"]
    return connection


def events(client: TestClient, tenant: TenantKey, **query: Any) -> list[dict[str, Any]]:
    answer = client.get(f"{V2}/events", params={**RANGE, **query}, headers=tenant.headers)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["events"]
    return found


def test_the_owner_is_read_from_the_schedule_and_filters_the_events(
    engine: Engine, wix: Wix, wix_settings: Settings, wix_context: WorkerContext,
    wix_client: TestClient, tenant: TenantKey,
) -> None:  # fmt: skip
    alice = seed_connection(engine, wix_settings, tenant, staff(wix, "Alice", ALICE_USER))
    bob = seed_connection(engine, wix_settings, tenant, staff(wix, "Bob", BOB_USER))
    add_links(
        engine,
        alice,
        "Home",
        [(Side.EXTERNAL, seen("Dentist", on(1, "09:00:00+00:00"), on(1, "10:00:00+00:00")))],
    )
    add_links(
        engine,
        bob,
        "Home",
        [(Side.EXTERNAL, seen("Gym", on(2, "07:00:00+00:00"), on(2, "08:00:00+00:00")))],
    )
    assert "userId" not in connection_of(wix_client, tenant, alice)  # not read yet
    assert not events(wix_client, tenant, userIds=ALICE_USER)

    assert learn_owner(wix_context, alice) == {"userId": ALICE_USER}
    assert learn_owner(wix_context, bob) == {"userId": BOB_USER}

    connection = connection_of(wix_client, tenant, alice)
    assert (connection["userId"], connection["appId"]) == (ALICE_USER, wix.app_id)
    mine = events(wix_client, tenant, userIds=ALICE_USER)
    assert [(e["start"][:10], e["scheduleOwnerId"]) for e in mine] == [(on(1), ALICE_USER)]
    assert "scheduleOwnerName" not in mine[0]  # personal: only with OWN_PI
    both = events(wix_client, tenant, userIds=[ALICE_USER, BOB_USER], fieldsets="OWN_PI")
    assert [(e["title"], e["scheduleOwnerName"]) for e in both] == [
        ("Dentist", "Alice"),
        ("Gym", "Bob"),
    ]
    assert not events(wix_client, tenant, userIds="someone-else")


def test_a_schedule_that_changes_hands_shows_its_new_owner(
    engine: Engine, wix: Wix, wix_settings: Settings, wix_context: WorkerContext,
    wix_client: TestClient, tenant: TenantKey,
) -> None:  # fmt: skip
    schedule = staff(wix, "Front desk", ALICE_USER)
    connection_id = seed_connection(engine, wix_settings, tenant, schedule)
    learn_owner(wix_context, connection_id)
    wix.state.schedules[schedule].owner_user_id = None  # its owner lost their Wix user

    assert learn_owner(wix_context, connection_id) == {"userId": None}
    assert "userId" not in connection_of(wix_client, tenant, connection_id)
    add_links(
        engine,
        connection_id,
        "Home",
        [(Side.EXTERNAL, seen("Lunch", on(1, "12:00:00+00:00"), on(1, "13:00:00+00:00")))],
    )
    listed = events(wix_client, tenant, fieldsets="OWN_PI")
    assert [(e.get("scheduleOwnerId"), e["scheduleOwnerName"]) for e in listed] == [
        (None, "Front desk")
    ]


def test_a_schedule_wix_does_not_know_leaves_the_owner_alone(
    engine: Engine, wix: Wix, wix_settings: Settings, wix_context: WorkerContext,
    tenant: TenantKey,
) -> None:  # fmt: skip
    connection_id = seed_connection(engine, wix_settings, tenant, "no-such-schedule")
    assert learn_owner(wix_context, connection_id) == {"error": "CALENDAR_DELETED"}


def test_without_a_wix_app_there_is_no_owner_to_read(
    engine: Engine, api_settings: Settings, context: WorkerContext, tenant: TenantKey,
) -> None:  # fmt: skip
    connection_id = seed_connection(engine, api_settings, tenant)  # the local store plays Wix
    assert learn_owner(context, connection_id) == {"skipped": "no Wix app"}
