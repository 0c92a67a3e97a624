from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from harness import services
from sqlalchemy import inspect

from models import Base
from models.db import make_engine
from models.migrate import current_revision, downgrade, head_revision, upgrade


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request: pytest.FixtureRequest, postgres_server: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"calsync_mig_{uuid.uuid4().hex[:8]}"
    yield services.create_database(postgres_server, name)
    services.drop_database(postgres_server, name)


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    upgrade(empty_database)
    assert current_revision(empty_database) == head_revision()
    assert table_names(empty_database) == set(Base.metadata.tables)
    downgrade(empty_database)
    assert current_revision(empty_database) is None
    assert table_names(empty_database) == set()
    upgrade(empty_database)
    assert table_names(empty_database) == set(Base.metadata.tables)


def test_migrations_match_the_models(empty_database: str) -> None:
    upgrade(empty_database)
    engine = make_engine(empty_database)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
