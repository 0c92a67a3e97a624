"""Dead letters: listed per connection (narrowed by status), and retried: a parked change is
released for one more try and a full sync of its calendar is queued. Another tenant's letters
are 404s."""

from __future__ import annotations

from conftest import Queued, TenantKey, seed_connection
from fastapi.testclient import TestClient
from records import add_letter, calendar_of
from sqlalchemy import Engine

from config import Settings
from models import DeadLetter, DeadLetterStatus
from models.db import session_scope

V2 = "/bookings/v2/external-calendars"
SYNC = "tasks.calendar_sync.sync_calendar"


def test_dead_letters_are_listed_and_narrowed_by_status(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    home = calendar_of(engine, connection_id, "/alice/home/")
    parked = add_letter(engine, connection_id, home, "link-1")
    failing = add_letter(engine, connection_id, home, "link-2", attempts=2, parked_at=None,
                         status=DeadLetterStatus.FAILING)  # fmt: skip
    url = f"{V2}/connections/{connection_id}/dead-letters"

    listed = client.get(url, headers=tenant.headers).json()["deadLetters"]
    assert [letter["id"] for letter in listed] == [failing, parked]
    shown = listed[1]
    assert (shown["calendarId"], shown["changeKey"], shown["status"], shown["attempts"]) == (
        "/alice/home/", "link-1", "PARKED", 5)  # fmt: skip
    assert shown["action"] == {"kind": "Create", "side": "WIX", "reason": "CREATED_EXTERNALLY"}
    assert shown["error"] == "PermanentError: the event was refused" and "parkedDate" in shown

    narrowed = client.get(url, headers=tenant.headers, params={"status": "PARKED"}).json()
    assert [letter["id"] for letter in narrowed["deadLetters"]] == [parked]
    bad = client.get(url, headers=tenant.headers, params={"status": "LOST"})
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "status"


def test_retry_releases_a_parked_change_and_asks_for_a_sync(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings, queued: Queued
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    home = calendar_of(engine, connection_id, "/alice/home/")
    letter_id = add_letter(engine, connection_id, home, "link-1")

    retried = client.post(f"{V2}/dead-letters/{letter_id}:retry", headers=tenant.headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["deadLetter"]["status"] == "RETRYING"
    with session_scope(engine) as db:
        letter = db.get(DeadLetter, letter_id)
        assert letter is not None
        # One more failure parks it again.
        assert letter.attempts == api_settings.dead_letter_after - 1
    assert (SYNC, [home, "retry", True]) in queued("sync")


def test_another_tenants_dead_letters_are_not_found(
    client: TestClient, tenant: TenantKey, other: TenantKey, engine: Engine,
    api_settings: Settings, queued: Queued,
) -> None:  # fmt: skip
    theirs = seed_connection(engine, api_settings, other, "sched-9")
    letter_id = add_letter(engine, theirs, calendar_of(engine, theirs, "/alice/home/"), "link-1")
    listed = client.get(f"{V2}/connections/{theirs}/dead-letters", headers=tenant.headers)
    assert listed.status_code == 404
    for unknown in (letter_id, "no-such-letter"):
        retried = client.post(f"{V2}/dead-letters/{unknown}:retry", headers=tenant.headers)
        assert retried.status_code == 404
        assert retried.json()["details"]["field"] == "deadLetterId"
    with session_scope(engine) as db:
        letter = db.get(DeadLetter, letter_id)
        assert letter is not None and letter.status is DeadLetterStatus.PARKED
    assert queued("sync") == []
