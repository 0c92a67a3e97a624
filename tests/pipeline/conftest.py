"""A whole pipeline on loopback: the calendar store (both sides), calsync's API, real workers,
on Redis or RabbitMQ as the broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.google import GoogleWorld
from harness.microsoft import GRAPH, Outlook
from harness.pipeline import (
    QUICK_TIMINGS,
    Pair,
    broker_context,
    own_broker_prefix,
    store_served,
    watch,
)
from harness.processes import Launch, workers
from sqlalchemy import Engine

from api.app import create_app
from config import Settings
from models import (
    Connection,
    ExternalCalendar,
    Provider,
    Tenant,
)
from models.db import session_scope
from sandbox.graph.harness import graph_harness
from sandbox.server import ServedApp, serve_in_thread
from sandbox.store import StoreState
from tasks.context import WorkerContext

# The modules that prove the delivery guarantees and the broker's part in them: `make test` runs
# their tests that use a broker on RabbitMQ as well as on Redis (test_local_provider and the pure
# tests of test_periodic use none, so they run once). The other pipeline tests run on Redis, or
# all on the broker `--broker` names.
ON_BOTH_BROKERS = {"test_delivery.py", "test_runner.py", "test_dead_letters.py",
                   "test_coordination.py", "test_periodic.py"}  # fmt: skip


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if ("broker" in metafunc.fixturenames and not metafunc.config.getoption("--broker")
            and metafunc.definition.path.name in ON_BOTH_BROKERS):  # fmt: skip
        metafunc.parametrize("broker", ["redis", "rabbitmq"], indirect=True)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """The broker the test runs on: its parameter, else `--broker`, else Redis."""
    return getattr(request, "param", None) or request.config.getoption("--broker") or "redis"


@pytest.fixture
def store() -> Iterator[tuple[StoreState, ServedApp]]:
    yield from store_served()


@pytest.fixture
def broker_urls(broker: str, redis_server: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """On RabbitMQ, the run's virtual host carries the tasks while locks, buckets and beat's
    leader lock stay on the test Redis (under the prefix that also names the test's queues)."""
    if broker == "redis":
        return {}  # the base settings' broker: the test Redis
    return {"broker_url": request.getfixturevalue("rabbitmq_vhost"),
            "redis_url": f"{redis_server}/0"}  # fmt: skip


@pytest.fixture
def pipeline_settings(
    settings: Settings, store: tuple[StoreState, ServedApp], broker_urls: dict[str, str],
    request: pytest.FixtureRequest,
) -> Settings:  # fmt: skip
    """The test settings with quick timings; a `timings` marker shortens them further for a
    test that waits one out (its values still pass the settings' own checks)."""
    marker = request.node.get_closest_marker("timings")
    timings = {**QUICK_TIMINGS, **(marker.kwargs if marker else {})}
    return Settings.model_validate({
        **settings.model_dump(),
        "wix_local_store_url": store[1].base_url,
        "broker_key_prefix": own_broker_prefix(settings),
        **timings,
        **broker_urls,
    })  # fmt: skip


@pytest.fixture
def context(pipeline_settings: Settings, engine: Engine) -> Iterator[WorkerContext]:
    yield from broker_context(pipeline_settings)


@pytest.fixture
def api(pipeline_settings: Settings, context: WorkerContext) -> Iterator[ServedApp]:
    app = create_app(pipeline_settings)
    app.state.gate = context.gate
    with serve_in_thread(app) as served:
        yield served


@pytest.fixture
def pair(store: tuple[StoreState, ServedApp], context: WorkerContext, engine: Engine) -> Pair:
    state, served = store
    state.add_calendar("alice")
    state.add_calendar("wix-s1")
    with session_scope(engine) as db:
        tenant = Tenant(wix_instance_id=f"instance-{uuid.uuid4().hex[:6]}")
        db.add(tenant)
        db.flush()
        connection = Connection(tenant_id=tenant.id, provider=Provider.LOCAL, schedule_id="s1",
                                server_url=served.base_url, sync_config={})  # fmt: skip
        db.add(connection)
        db.flush()
        calendar = ExternalCalendar(connection_id=connection.id, remote_id="alice",
                                    import_enabled=True, export_target=True)  # fmt: skip
        db.add(calendar)
        db.flush()
        return Pair(state, served.base_url, calendar.id, connection.id)


@pytest.fixture
def watched(pair: Pair, api: ServedApp, context: WorkerContext, engine: Engine) -> Pair:
    watch(pair, api, context, engine)
    return pair


@pytest.fixture
def worker(pipeline_settings: Settings, tmp_path: Path) -> Iterator[Launch]:
    """Start real worker processes, each ready when started (with other settings if given)."""
    yield from workers(pipeline_settings, tmp_path)


@pytest.fixture(scope="module")
def google_world() -> Iterator[GoogleWorld]:
    """The Google sandbox, for the modules that drive runs in process against it."""
    world = GoogleWorld.start()
    yield world
    world.stop()


@pytest.fixture(scope="module")
def outlook() -> Iterator[Outlook]:
    """The Graph sandbox and its login authority, for the same modules."""
    with graph_harness(GRAPH) as graph:
        yield Outlook(graph)
