"""A connection's life through the API with real workers: both sides live in the local store
(`alice` is the external calendar, `wix-s1` the Wix schedule's). Sync config changes move the
copies; disconnect leaves no exported event and no imported block behind."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import TenantKey, seed_connection
from fastapi.testclient import TestClient
from harness.pipeline import Pair
from harness.processes import Launch, wait_until
from sqlalchemy import Engine, func, select

from config import Settings
from models import Connection, Link, Provider
from models.db import session_scope
from providers.base import CalendarInfo
from sandbox.server import ServedApp
from sandbox.store import StoreState

V2 = "/bookings/v2/external-calendars"
ALICE = CalendarInfo(remote_id="alice", name="Alice", read_only=False)


def links(engine: Engine, connection_id: str) -> int:
    with engine.connect() as db:
        query = select(func.count()).where(Link.connection_id == connection_id)
        return int(db.scalar(query) or 0)


def test_sync_config_changes_move_the_copies_and_disconnect_removes_them_all(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings,
    store: tuple[StoreState, ServedApp], worker: Launch,
) -> None:  # fmt: skip
    state, served = store
    state.add_calendar("alice")
    state.add_calendar("wix-s1")
    connection_id = seed_connection(engine, api_settings, tenant, "s1", Provider.LOCAL, (ALICE,),
                                    server_url=served.base_url)  # fmt: skip
    pair = Pair(state, served.base_url, "", connection_id)
    pair.person_adds("alice", "Dentist", hour=1)
    pair.person_adds("wix-s1", "Yoga class", hour=3)
    worker()

    def configure(config: dict[str, Any]) -> None:
        response = client.patch(f"{V2}/connections/{connection_id}/sync-config",
                                headers=tenant.headers, json={"syncConfig": config})  # fmt: skip
        assert response.status_code == 200, response.text

    def settles(calendar: str, titles: list[str], what: str) -> None:
        wait_until(lambda: pair.titles(calendar) == titles, 60, what)

    # Exporting to alice (import is on by default): both directions flow.
    configure({"syncToCalendar": {"enabled": True, "calendar": {"id": "alice"}}})
    settles("wix-s1", ["Dentist", "Yoga class"], "the Dentist block in Wix")
    settles("alice", ["Dentist", "Yoga class"], "the session in alice")

    def status() -> str:
        body = client.get(f"{V2}/connections/{connection_id}", headers=tenant.headers).json()
        return str(body["connection"]["status"])

    wait_until(lambda: status() == "SYNCED", 30, "the run to finish")

    # Import off: the Wix block goes; import on again: it comes back.
    configure({"listEventFromCalendars": {"enabled": False}})
    settles("wix-s1", ["Yoga class"], "the block to leave Wix")
    configure({"listEventFromCalendars": {"enabled": True}})
    settles("wix-s1", ["Dentist", "Yoga class"], "the block to return")

    # A dedicated calendar (made by the worker) receives the session instead: alice loses its
    # copy, and, no longer importing, its block in Wix.
    configure({"listEventFromCalendars": {"enabled": False},
               "syncToCalendar": {"enabled": True, "dedicatedCalendar": {}}})  # fmt: skip
    dedicated = f"calsync-{connection_id[:12]}"
    wait_until(lambda: dedicated in state.calendars, 60, "the dedicated calendar")
    settles(dedicated, ["Yoga class"], "the session in the dedicated calendar")
    settles("alice", ["Dentist"], "the session to leave alice")
    settles("wix-s1", ["Yoga class"], "the block to leave Wix")
    calendars = client.get(f"{V2}/connections/{connection_id}/calendars",
                           headers=tenant.headers).json()["calendars"]  # fmt: skip
    assert {c["id"] for c in calendars} == {"alice", dedicated}

    # And back to alice, both ways: the dedicated calendar is emptied.
    configure({"listEventFromCalendars": {"enabled": True},
               "syncToCalendar": {"enabled": True, "calendar": {"id": "alice"}}})  # fmt: skip
    settles(dedicated, [], "the session to leave the dedicated calendar")
    settles("alice", ["Dentist", "Yoga class"], "the session back in alice")
    settles("wix-s1", ["Dentist", "Yoga class"], "the block back in Wix")

    # Disconnect: every copy goes, on both sides; what people made themselves stays.
    response = client.post(f"{V2}/connections/{connection_id}/disconnect", headers=tenant.headers)
    assert response.json()["connection"]["status"] == "DISCONNECTED"
    settles("alice", ["Dentist"], "the exported session to go")
    settles("wix-s1", ["Yoga class"], "the imported block to go")

    def cleaned() -> bool:
        body = client.get(f"{V2}/connections/{connection_id}/status", headers=tenant.headers)
        return body.json().get("cleanup", {}).get("status") == "SUCCEEDED"

    wait_until(cleaned, 30, "the clean-up run")
    cleanup = client.get(f"{V2}/connections/{connection_id}/status",
                         headers=tenant.headers).json()["cleanup"]  # fmt: skip
    assert cleanup["deleted"] == 2 and cleanup["kind"] == "disconnect"
    assert links(engine, connection_id) == 0
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None and connection.credentials is None
    # Nothing comes back later: the connection no longer syncs.
    pair.person_adds("alice", "After", hour=5)
    response = client.post(f"{V2}/connections/{connection_id}:resync", headers=tenant.headers)
    assert response.status_code == 409
    assert pair.titles("wix-s1") == ["Yoga class"]
    assert httpx.get(f"{served.base_url}/_store/calendars/{dedicated}/events").json() == {
        "events": []}  # fmt: skip
