"""Rows the operator views read (sync runs, conflicts, dead letters), written straight into
the database for tests of the views themselves (`moment` counts back from now), and a local
connection whose both sides live in the calendar store, for tests with a real worker."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from conftest import TenantKey, seed_connection
from harness.pipeline import Pair
from sqlalchemy import Engine, select

from config import Settings
from models import (
    Conflict,
    ConflictStatus,
    DeadLetter,
    DeadLetterStatus,
    ExternalCalendar,
    Provider,
    RunStatus,
    Side,
    SyncRun,
)
from models.db import session_scope
from models.types import utcnow
from providers.base import CalendarInfo
from sandbox.server import ServedApp
from sandbox.store import StoreState

ALICE = CalendarInfo(remote_id="alice", name="Alice", read_only=False)


def moment(minutes_ago: float) -> datetime:
    return utcnow() - timedelta(minutes=minutes_ago)


def calendar_of(engine: Engine, connection_id: str, remote_id: str) -> str:
    with session_scope(engine) as db:
        found = db.scalar(select(ExternalCalendar.id).where(
            ExternalCalendar.connection_id == connection_id,
            ExternalCalendar.remote_id == remote_id))  # fmt: skip
        assert found is not None
        return found


def add_run(engine: Engine, connection_id: str, calendar_id: str, minutes_ago: float,
            **fields: Any) -> str:  # fmt: skip
    started = moment(minutes_ago)
    values: dict[str, Any] = {"kind": "incremental", "trigger": "webhook",
                              "status": RunStatus.SUCCEEDED, "started_at": started,
                              "finished_at": started + timedelta(seconds=2)} | fields  # fmt: skip
    with session_scope(engine) as db:
        run = SyncRun(connection_id=connection_id, calendar_id=calendar_id, **values)
        db.add(run)
        db.flush()
        return run.id


def add_conflict(engine: Engine, connection_id: str, minutes_ago: float = 1.0,
                 **fields: Any) -> str:  # fmt: skip
    values: dict[str, Any] = {"field": "title", "base_value": "Yoga", "wix_value": "Yoga (Wix)",
                              "external_value": "Yoga (Alice)", "policy": "ORIGIN_WINS",
                              "winner": Side.WIX, "status": ConflictStatus.OPEN,
                              "decided_at": moment(minutes_ago)} | fields  # fmt: skip
    with session_scope(engine) as db:
        row = Conflict(connection_id=connection_id, **values)
        db.add(row)
        db.flush()
        return row.id


def add_letter(engine: Engine, connection_id: str, calendar_id: str, key: str,
               **fields: Any) -> str:  # fmt: skip
    values: dict[str, Any] = {"action": {"kind": "Create", "side": "WIX",
                                         "reason": "CREATED_EXTERNALLY"},
                              "error": "PermanentError: the event was refused", "attempts": 5,
                              "status": DeadLetterStatus.PARKED,
                              "parked_at": moment(1)} | fields  # fmt: skip
    with session_scope(engine) as db:
        letter = DeadLetter(connection_id=connection_id, calendar_id=calendar_id,
                            change_key=key, **values)  # fmt: skip
        db.add(letter)
        db.flush()
        return letter.id


def store_pair(engine: Engine, settings: Settings, owner: TenantKey,
               store: tuple[StoreState, ServedApp]) -> Pair:  # fmt: skip
    """Schedule `s1` connected to `alice`, with `wix-s1` as its Wix side, both in the store."""
    state, served = store
    state.add_calendar("alice")
    state.add_calendar("wix-s1")
    connection_id = seed_connection(engine, settings, owner, "s1", Provider.LOCAL, (ALICE,),
                                    server_url=served.base_url)  # fmt: skip
    return Pair(state, served.base_url, "", connection_id)


def status_of(engine: Engine, model: Any, record_id: str) -> Any:
    """The status a conflict, dead letter or run has now."""
    with session_scope(engine) as db:
        record = db.get(model, record_id)
        assert record is not None
        return record.status
