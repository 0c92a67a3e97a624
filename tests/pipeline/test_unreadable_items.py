"""A Google or Outlook event the API serves without fields it must have (the sandboxes' damage
fault), end to end through calsync's runs: its Wix block stays as it was through an incremental
and a full run, an event added meanwhile still arrives, the calendar names the damaged event
as unreadable with its reason, and once repaired the event syncs again and the entry is gone.

The runs are driven in this process (`run_calendar`), one after another, as the CalDAV
counterpart does: each run's outcome is its own positive signal, so nothing waits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from harness.google import BASE, USER, GoogleWorld, timed
from harness.microsoft import BASE as OUTLOOK_BASE
from harness.microsoft import Outlook
from harness.pipeline import NOWHERE, connect_calendar
from sqlalchemy import Engine

from config import Settings
from models import ExternalCalendar, Provider
from models.db import session_scope
from providers.local.memory import MemoryCalendar
from providers.microsoft.auth import MicrosoftTokens
from sandbox.server import ServedApp
from sandbox.store import StoreState
from sync.snapshot import RemoteEvent
from tasks.context import WorkerContext, build_context
from tasks.runner import run_calendar

HOUR = timedelta(hours=1)


def block(wix: MemoryCalendar, title: str) -> RemoteEvent:
    (found,) = [e for e in wix.events().values() if e.event and e.event.title == title]
    return found


def titles(wix: MemoryCalendar) -> list[str]:
    return sorted(e.event.title for e in wix.events().values() if e.event)


def unreadable(engine: Engine, calendar_id: str) -> dict[str, str]:
    with session_scope(engine) as db:
        calendar = db.get(ExternalCalendar, calendar_id)
        assert calendar is not None
        return {key: item["reason"] for key, item in (calendar.unreadable or {}).items()}


@dataclass
class PersonEdits:
    """What the calendar's owner (and the fault) do to "Dentist" and "Lunch" in one test."""

    damage: Callable[[], str]  # returns the damaged event's id
    add_lunch: Callable[[], object]
    repair_and_rename: Callable[[], object]


def keeps_block_while_unreadable(
    context: WorkerContext,
    engine: Engine,
    wix: MemoryCalendar,
    calendar_id: str,
    person: PersonEdits,
    field: str,
) -> None:
    """Dentist's block stays while it is unreadable and Lunch arrives; repaired, it syncs."""
    run_calendar(context, calendar_id, "poll")
    assert titles(wix) == ["Dentist"]
    kept = block(wix, "Dentist")

    dentist = person.damage()
    person.add_lunch()
    for full in (False, True):
        outcome = run_calendar(context, calendar_id, "poll", full=full)
        assert outcome.failed == 0 and outcome.stopped_by is None
        assert titles(wix) == ["Dentist", "Lunch"]  # the rest syncs
        assert block(wix, "Dentist") == kept  # untouched: same version, same content
        noted, key = unreadable(engine, calendar_id), f"external:{dentist}"
        assert list(noted) == [key] and f"'{field}'" in noted[key]

    person.repair_and_rename()
    run_calendar(context, calendar_id, "poll")
    assert titles(wix) == ["Dentist (moved)", "Lunch"]
    assert unreadable(engine, calendar_id) == {}


def test_a_google_event_missing_its_times_keeps_its_block_and_the_rest_syncs(
    google_world: GoogleWorld, pipeline_settings: Settings, engine: Engine,
    store: tuple[StoreState, ServedApp],
) -> None:  # fmt: skip
    google = google_world.state
    google_world.reset()
    settings = google_world.settings_for(pipeline_settings, NOWHERE)
    wix = store[0].add_calendar("wix-s1")
    dentist = str(google.insert_event(USER, {"summary": "Dentist", **timed(BASE)})["id"])
    tokens = google_world.tokens()
    calendar_id = connect_calendar(engine, Provider.GOOGLE, USER,
                                   credentials=tokens.to_dict(), token_expires_at=tokens.expiry,
                                   external_account_email=USER)  # fmt: skip

    def damage() -> str:
        google.damage_event(USER, dentist, ["start", "end"])
        return dentist

    def repair_and_rename() -> None:
        google.damage_event(USER, dentist, [])
        google.patch_event(USER, dentist, {"summary": "Dentist (moved)"})

    edits = PersonEdits(
        damage,
        lambda: google.insert_event(USER, {"summary": "Lunch", **timed(BASE + 3 * HOUR)}),
        repair_and_rename,
    )
    keeps_block_while_unreadable(build_context(settings), engine, wix, calendar_id, edits, "start")


def test_an_outlook_event_missing_its_times_and_type_keeps_its_block_and_the_rest_syncs(
    outlook: Outlook, pipeline_settings: Settings, engine: Engine,
    store: tuple[StoreState, ServedApp], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # MSAL must trust the sandbox's login CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", outlook.graph.tls.ca_path)
    settings = outlook.settings_for(pipeline_settings, NOWHERE)
    graph, user = outlook.graph.state, outlook.user
    wix = store[0].add_calendar("wix-s1")
    dentist = outlook.add("Dentist", OUTLOOK_BASE)
    issued = outlook.graph.issue_tokens()
    expiry = datetime.now(UTC) + timedelta(seconds=int(issued["expires_in"]))
    tokens = MicrosoftTokens(issued["access_token"], issued["refresh_token"], expiry,
                             outlook.graph.user.upn)  # fmt: skip
    primary = graph.calendar(user, None).id
    calendar_id = connect_calendar(engine, Provider.MICROSOFT, primary,
                                   credentials=tokens.to_dict(), token_expires_at=expiry,
                                   external_account_email=outlook.graph.user.upn)  # fmt: skip

    def damage() -> str:
        graph.damage_event(user, dentist, ["start", "end", "type"])
        return dentist

    def repair_and_rename() -> None:
        graph.damage_event(user, dentist, [])
        graph.update_event(user, dentist, {"subject": "Dentist (moved)"}, check_access=False)

    edits = PersonEdits(
        damage, lambda: outlook.add("Lunch", OUTLOOK_BASE + 3 * HOUR), repair_and_rename
    )
    keeps_block_while_unreadable(build_context(settings), engine, wix, calendar_id, edits, "type")
