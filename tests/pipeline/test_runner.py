"""One run of one calendar, in process: pull both sides, plan, apply, record."""

from __future__ import annotations

import httpx
import pytest
from harness.pipeline import Pair
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from models import (
    PRIMARY_PLACEHOLDER,
    Connection,
    ConnectionStatus,
    ExternalCalendar,
    Link,
    SyncRun,
)
from models.db import session_scope
from tasks import runner
from tasks.context import WorkerContext
from tasks.runner import run_calendar


def test_a_run_syncs_both_ways_and_records_itself(pair: Pair, context: WorkerContext,
                                                  engine: Engine) -> None:  # fmt: skip
    pair.person_adds(pair.external, "Dentist")
    pair.person_adds(pair.wix, "Yoga class", hour=3)
    outcome = run_calendar(context, pair.calendar_id, "reconcile", full=True)
    assert outcome.stopped_by is None and outcome.failed == 0
    wix_titles, external_titles = pair.titles(pair.wix), pair.titles(pair.external)
    assert "Yoga class" in external_titles and len(external_titles) == 2
    assert len(wix_titles) == 2
    blocks = [e for e in pair.events(pair.wix) if e["tag"] == "local"]
    assert len(blocks) == 1 and str(blocks[0]["marker"]).startswith("calsync:")
    with session_scope(engine) as db:
        run = db.scalars(select(SyncRun)).one()
        assert (run.created, run.status.value) == (2, "SUCCEEDED")
        assert run.api_calls >= 4
        assert len(db.scalars(select(Link)).all()) == 2
        calendar = db.get(ExternalCalendar, pair.calendar_id)
        assert calendar is not None and calendar.cursor and calendar.wix_cursor
        connection = db.get(Connection, pair.connection_id)
        assert connection is not None and connection.status is ConnectionStatus.SYNCED


def test_a_second_run_writes_nothing(pair: Pair, context: WorkerContext) -> None:
    pair.person_adds(pair.external, "Dentist")
    run_calendar(context, pair.calendar_id, "reconcile", full=True)
    posts = pair.writes(pair.wix) + pair.writes(pair.external)
    again = run_calendar(context, pair.calendar_id, "reconcile", full=True)
    assert again.applied == 0 or pair.writes(pair.wix) + pair.writes(pair.external) == posts
    assert pair.writes(pair.wix, "PUT") == 0


def test_throttled_store_stops_the_run_without_advancing(pair: Pair, context: WorkerContext,
                                                         engine: Engine) -> None:  # fmt: skip
    pair.person_adds(pair.external, "Dentist")
    httpx.post(f"{pair.store_url}/_store/faults", json={"status": 429, "retryAfter": 2})
    outcome = run_calendar(context, pair.calendar_id, "reconcile", full=True)
    assert outcome.stopped_by is not None
    assert getattr(outcome.stopped_by, "retry_after", None) == 2
    with session_scope(engine) as db:
        calendar = db.get(ExternalCalendar, pair.calendar_id)
        assert calendar is not None and calendar.cursor is None
        run = db.scalars(select(SyncRun)).one()
        assert run.status.value == "FAILED" and "RateLimited" in (run.error or "")


def test_two_calendars_of_one_connection_keep_each_others_blocks(
    pair: Pair, context: WorkerContext, engine: Engine
) -> None:
    pair.store.add_calendar("alice-work")
    with session_scope(engine) as db:
        work = ExternalCalendar(connection_id=pair.connection_id, remote_id="alice-work",
                                import_enabled=True, export_target=False)  # fmt: skip
        db.add(work)
        db.flush()
        work_id = work.id
    pair.person_adds(pair.external, "Dentist")
    pair.person_adds("alice-work", "Standup", hour=2)
    for _ in range(2):  # each full run sees the other calendar's block on the Wix side
        for calendar_id in (pair.calendar_id, work_id):
            outcome = run_calendar(context, calendar_id, "reconcile", full=True)
            assert outcome.failed == 0
    assert pair.titles(pair.wix) == ["Dentist", "Standup"]
    assert pair.writes(pair.wix, "DELETE") == 0
    # Both are exported nowhere but `alice`: the work block stays out of the home calendar.
    assert pair.titles(pair.external) == ["Dentist"]
    assert pair.titles("alice-work") == ["Standup"]


def test_a_calendar_whose_id_is_not_learnt_yet_is_not_run(
    pair: Pair, context: WorkerContext, engine: Engine
) -> None:
    with session_scope(engine) as db:
        calendar = db.get(ExternalCalendar, pair.calendar_id)
        assert calendar is not None
        calendar.remote_id = PRIMARY_PLACEHOLDER  # as Connect By OAuth leaves it for Microsoft
    outcome = run_calendar(context, pair.calendar_id, "reconcile", full=True)
    assert outcome.skipped and outcome.run_id is None
    with session_scope(engine) as db:
        connection = db.get(Connection, pair.connection_id)
        assert connection is not None and connection.status is ConnectionStatus.CONNECTED
        assert db.scalars(select(SyncRun)).first() is None


def test_an_incremental_run_weighs_deletions_against_every_link(
    pair: Pair, context: WorkerContext
) -> None:
    made = [pair.person_adds(pair.external, f"Dentist {n}", hour=n) for n in range(12)]
    run_calendar(context, pair.calendar_id, "reconcile", full=True)
    run_calendar(context, pair.calendar_id, "poll")  # reads the echoes of its own writes
    assert len(pair.titles(pair.wix)) == 12
    for event_id in made[:8]:  # two thirds of the calendar gone at once: more likely broken
        httpx.delete(f"{pair.store_url}/_store/calendars/{pair.external}/events/{event_id}"
                     ).raise_for_status()  # fmt: skip
    outcome = run_calendar(context, pair.calendar_id, "poll")  # plans with 8 links of 12
    assert outcome.applied == 0 and outcome.failed == 0
    assert len(pair.titles(pair.wix)) == 12  # the guard held: the blocks stay
    with session_scope(context.engine) as db:
        run = db.get(SyncRun, outcome.run_id)
        assert run is not None and run.error is not None and "8 of 12" in run.error


def test_a_disconnect_committed_during_a_run_stands(
    pair: Pair, context: WorkerContext, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair.person_adds(pair.external, "Dentist")
    checked = runner._active

    def then_disconnected(db: Session, connection: Connection) -> bool:
        active = checked(db, connection)  # the run decided to go on; now the API commits
        with session_scope(engine) as other:
            row = other.get(Connection, connection.id)
            assert row is not None
            row.status = ConnectionStatus.DISCONNECTED
        return active

    monkeypatch.setattr(runner, "_active", then_disconnected)
    run_calendar(context, pair.calendar_id, "reconcile", full=True)
    with session_scope(engine) as db:
        connection = db.get(Connection, pair.connection_id)
        assert connection is not None and connection.status is ConnectionStatus.DISCONNECTED
