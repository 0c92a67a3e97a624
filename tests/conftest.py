"""Session-wide real services (PostgreSQL, Redis, RabbitMQ), per-test settings pointing at them,
and the guard that keeps every test process on loopback."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import services
from harness.env import settings_env
from harness.loopback_only import loopback_guard
from sqlalchemy import Engine, text

from config import Settings, load_settings
from models import Base
from models.crypto import keyring, new_key
from models.db import engine_for
from models.migrate import upgrade

# Set to 1 to prove the suite also runs on private throwaway instances.
FORCE_PRIVATE = os.environ.get("CALSYNC_TEST_PRIVATE_SERVICES") == "1"
RUN_ID = uuid.uuid4().hex[:8]

# This process, and every Python process it starts (sitecustomize on PYTHONPATH), may reach
# loopback only; the attempts refused in any of them are written to one file.
GUARD_FOLDER = Path(loopback_guard.__file__).parent
GUARD_LOG = Path(tempfile.mkdtemp(prefix="calsync-loopback-")) / "refused.log"
GUARD_LOG.touch()
os.environ[loopback_guard.LOG_VARIABLE] = str(GUARD_LOG)
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(GUARD_FOLDER), os.environ.get("PYTHONPATH")])
)
loopback_guard.install()
# Every default that names a host on the internet points at a closed loopback port instead.
NOWHERE = "http://127.0.0.1:9/"
OFFLINE = {name: NOWHERE for name in (
    "apple_caldav_url", "wix_api_base_url", "google_auth_url", "google_token_url",
    "google_api_base_url", "microsoft_authority_url", "microsoft_graph_base_url",
)}  # fmt: skip


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker", choices=("redis", "rabbitmq"), default=None,
        help="run every pipeline test on this broker only (by default: Redis, and RabbitMQ as "
             "well for the modules tests/pipeline/conftest.py lists)",
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    """Fails the test during which any test process tried to reach beyond loopback."""
    seen = GUARD_LOG.stat().st_size
    yield
    with GUARD_LOG.open(encoding="utf-8") as log:
        log.seek(seen)
        refused = log.read()
    if refused:
        pytest.fail(f"the test tried to reach hosts other than loopback:\n{refused}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    service = services.postgres(FORCE_PRIVATE)
    yield service.url
    service.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    service = services.redis_service(FORCE_PRIVATE)
    yield service.url
    service.stop()


@pytest.fixture(scope="session")
def rabbitmq_server() -> Iterator[str]:
    service = services.rabbitmq(FORCE_PRIVATE)
    yield service.url
    service.stop()


@pytest.fixture(scope="session")
def rabbitmq_vhost(rabbitmq_server: str) -> Iterator[str]:
    """A virtual host of our own on the server (its broker URL), deleted at the end; tests share
    it and keep apart by the names of their queues (`broker_key_prefix`)."""
    name = f"calsync-test-{RUN_ID}"
    url = services.create_vhost(rabbitmq_server, name)
    yield url
    services.delete_vhost(rabbitmq_server, name)


@pytest.fixture(scope="session")
def pg_url(postgres_server: str) -> Iterator[str]:
    """A database of our own on the server, migrated to head, dropped at the end."""
    name = f"calsync_test_{RUN_ID}"
    url = services.create_database(postgres_server, name)
    upgrade(url)
    yield url
    engine_for(url).dispose()
    services.drop_database(postgres_server, name)


@pytest.fixture(scope="session")
def session_key() -> str:
    return new_key()


@pytest.fixture(autouse=True)
def _keys(session_key: str) -> None:
    keyring.use([session_key])


@pytest.fixture
def settings(tmp_path: Path, pg_url: str, redis_server: str, session_key: str) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        database_url=pg_url,
        broker_url=f"{redis_server}/0",
        broker_key_prefix=f"calsync-test-{RUN_ID}:",
        encryption_keys=session_key,
        flower_basic_auth="admin:test-password",
        log_format="text",
        **OFFLINE,
    )


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    """The test database, emptied after each test that uses it."""
    engine = engine_for(pg_url)
    yield engine
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as db:
        db.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return settings_env(settings)
