"""A cancelled session of a recurring schedule, exported (issue 19, item 11): the calendar
client no longer shows that occurrence (CalDAV: an EXDATE on the master, expanded by
recurring_ical_events; Google: the cancelled instance, left out of a singleEvents listing;
Graph: the occurrence deleted, absent from calendarView), and the next runs, incremental and
full, write nothing. On Google, Graph, Radicale and Xandikos, driven in this process."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from test_sync_window import (
    INSIDE,
    Person,
    person,  # noqa: F401  (the fixture, parametrized below; the people use conftest's)
    radicale,  # noqa: F401
    xandikos,  # noqa: F401
)

from models import SyncRun
from models.db import session_scope
from sandbox.server import ServedApp
from sandbox.store import StoreState
from sync.event import CanonicalEvent, EventStatus, Recurrence
from tasks.runner import run_calendar

DAY = timedelta(days=1)
QUIET = ("Skip", "SaveLink")  # a run's bookkeeping, not writes


def writes(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    """What a run did to either calendar (its record: creates, updates, deletes)."""
    with session_scope(engine) as db:
        run = db.get(SyncRun, run_id)
        assert run is not None
        return [a for a in run.actions or [] if a["action"] not in QUIET]


@pytest.mark.parametrize("person", ["google", "microsoft", "caldav", "xandikos"], indirect=True)
def test_a_cancelled_session_is_hidden_in_the_calendar_and_settles(
    person: Person,  # noqa: F811
    engine: Engine,
    store: tuple[StoreState, ServedApp],
) -> None:
    wix = store[0].calendar("wix-s1")
    daily = CanonicalEvent("Pilates", INSIDE, INSIDE + timedelta(hours=1), time_zone="UTC",
                           recurrence=Recurrence(rule="FREQ=DAILY;COUNT=4"))  # fmt: skip
    series = wix.add(daily)
    slot = Recurrence(series_id=series.id, original_start=INSIDE + DAY)
    wix.add(replace(daily, start=INSIDE + DAY, end=INSIDE + DAY + timedelta(hours=1),
                    status=EventStatus.CANCELLED, recurrence=slot))  # fmt: skip

    person.run(full=False)
    assert person.shown("Pilates") == [INSIDE, INSIDE + 2 * DAY, INSIDE + 3 * DAY]
    for full in (False, True):
        outcome = run_calendar(person.context, person.calendar_id, "poll", full=full)
        assert outcome.failed == 0 and outcome.run_id is not None
        assert writes(engine, outcome.run_id) == [], f"full={full}"
    assert person.shown("Pilates") == [INSIDE, INSIDE + 2 * DAY, INSIDE + 3 * DAY]
