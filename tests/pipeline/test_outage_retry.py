"""A sync that loses calsync's own database midway is tried again, as a full sync, once the
database is back: it neither fails for good nor waits for the periodic reconciliation."""

from __future__ import annotations

from harness.pipeline import Pair
from harness.processes import Launch, wait_until
from harness.relay import relay_to
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from config import Settings
from models import SyncRun
from models.db import session_scope
from tasks.context import WorkerContext
from tasks.enqueue import request_sync


def test_a_sync_cut_off_from_the_database_runs_again_once_it_is_back(
    pair: Pair, pipeline_settings: Settings, context: WorkerContext, engine: Engine,
    worker: Launch,
) -> None:  # fmt: skip
    database = make_url(pipeline_settings.resolved_database_url())
    assert database.port is not None
    with relay_to(database.port) as relay:
        through_relay = database.set(port=relay.port).render_as_string(hide_password=False)
        worker(pipeline_settings.model_copy(update={"database_url": through_relay}))
        pair.person_adds(pair.external, "Before")
        request_sync(context.gate, pair.calendar_id, "reconcile")
        wait_until(lambda: "Before" in pair.titles(pair.wix), 30, "the first sync")

        relay.cut()
        pair.person_adds(pair.external, "During")
        request_sync(context.gate, pair.calendar_id, "webhook")
        wait_until(lambda: relay.refused > 0, 30, "the sync meeting the cut")
        relay.restore()

        wait_until(lambda: "During" in pair.titles(pair.wix), 45, "the sync tried again")
    with session_scope(engine) as db:
        triggers = db.scalars(select(SyncRun.trigger).where(
            SyncRun.calendar_id == pair.calendar_id)).all()  # fmt: skip
    assert "outage" in triggers
