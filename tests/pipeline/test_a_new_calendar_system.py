"""The seams are real: a calendar system defined in this test folder (`toy_system`: its server,
provider class and registry entry), named only in `CALSYNC_EXTRA_PROVIDERS`, is listed,
connected, synced both ways, followed by push and disconnected through calsync's own API and a
real worker, with no line of tasks/ or api/ knowing it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness.clock import days_ahead
from harness.pipeline import serve_context
from harness.processes import Launch, wait_until
from sqlalchemy import Engine, select
from toy_system import LISTING_ID, PASSWORD, ToyServer

from api.auth import create_tenant
from config import Settings
from models import Connection, ExternalCalendar
from models.db import session_scope
from sandbox.server import ServedApp, serve_in_thread
from sandbox.store import StoreState
from sync.event import CanonicalEvent
from sync.snapshot import RemoteEvent
from tasks.channels import open_channel
from tasks.context import WorkerContext

V2 = "/bookings/v2/external-calendars"
HERE = Path(__file__).parent


@pytest.fixture
def toy() -> Iterator[tuple[ToyServer, ServedApp]]:
    server = ToyServer(calendars={"ann-main": {}, "ann-team": {}})
    with serve_in_thread(server.app()) as served:
        yield server, served


@pytest.fixture
def toy_settings(pipeline_settings: Settings, api: ServedApp, monkeypatch: pytest.MonkeyPatch
                 ) -> Settings:  # fmt: skip
    # The worker finds the system's module where this test lives, and nowhere else.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [
        str(HERE), os.environ.get("PYTHONPATH")])))  # fmt: skip
    return pipeline_settings.model_copy(update={
        "extra_providers": ["toy_system:ENTRY"], "public_base_url": api.base_url})  # fmt: skip


@pytest.fixture
def toy_context(toy_settings: Settings, api: ServedApp) -> Iterator[WorkerContext]:
    yield from serve_context(toy_settings, api)


def titles(events: list[dict[str, Any]]) -> list[str]:
    return sorted(str(e["event"]["title"]) for e in events if e.get("event"))


def wix_side(store: tuple[StoreState, ServedApp]) -> list[dict[str, Any]]:
    answer = httpx.get(f"{store[1].base_url}/_store/calendars/wix-s1/events")
    return list(answer.json()["events"])


def toy_titles(server: ToyServer, calendar: str) -> list[str]:
    return sorted(r.event.title for r in server.events(calendar) if r.event is not None)


def test_a_system_defined_in_a_test_connects_syncs_pushes_and_disconnects(
    toy: tuple[ToyServer, ServedApp], toy_settings: Settings, toy_context: WorkerContext,
    api: ServedApp, store: tuple[StoreState, ServedApp], engine: Engine, worker: Launch,
) -> None:  # fmt: skip
    server, served = toy
    store[0].add_calendar("wix-s1")
    start = days_ahead(2, 9)
    dentist = CanonicalEvent("Dentist", start, start + timedelta(hours=1))
    server.write("ann-main", RemoteEvent("dentist", None, dentist))
    with session_scope(engine) as db:
        _, key = create_tenant(db, f"instance-{uuid.uuid4().hex[:8]}", "Studio")
    client = httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {key}"})
    worker(toy_settings)

    listed = client.get(f"{V2}/providers").json()["providers"]
    assert {"id": LISTING_ID, "name": "Toy Calendar"}.items() <= next(
        p for p in listed if p["id"] == LISTING_ID).items()  # fmt: skip
    body = {"scheduleId": "s1", "providerId": LISTING_ID, "serverUrl": served.base_url,
            "email": "ann", "password": "guess"}  # fmt: skip
    refused = client.post(f"{V2}/connections:connectByCredentials", json=body)
    assert refused.status_code == 400 and refused.json()["details"]["field"] == "password"
    connected = client.post(f"{V2}/connections:connectByCredentials",
                            json={**body, "password": PASSWORD})  # fmt: skip
    assert connected.status_code == 200, connected.text
    connection_id = connected.json()["connection"]["id"]

    # The toy calendar's event blocks the Wix schedule, tagged with the system's id.
    wait_until(lambda: titles(wix_side(store)) == ["Dentist"], 30, "the block on the Wix side")
    assert wix_side(store)[0]["tag"] == "toy"

    # Sessions go the other way once the toy calendar receives them.
    patched = client.patch(f"{V2}/connections/{connection_id}/sync-config", json={"syncConfig": {
        "syncToCalendar": {"enabled": True, "calendar": {"id": "ann-main"}}}})  # fmt: skip
    assert patched.status_code == 200, patched.text
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        calendar = db.scalars(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id,
            ExternalCalendar.remote_id == "ann-main")).one()  # fmt: skip
        assert connection is not None
        db.add(open_channel(toy_context, connection, calendar, "local", resource="wix-s1"))
    yoga = {"title": "Yoga", "start": (start + timedelta(days=1)).isoformat(),
            "end": (start + timedelta(days=1, hours=1)).isoformat()}  # fmt: skip
    httpx.post(f"{store[1].base_url}/_store/calendars/wix-s1/events",
               json={"event": yoga}).raise_for_status()  # fmt: skip
    wait_until(lambda: toy_titles(server, "ann-main") == ["Dentist", "Yoga"], 30,
               "the session in the toy calendar")  # fmt: skip

    # A person's edit in the toy system arrives by its own push channel.
    wait_until(lambda: len(server.channels) == 1, 30, "the toy channel calsync opened")
    moved = CanonicalEvent("Dentist", start + timedelta(hours=3), start + timedelta(hours=4))
    server.write("ann-main", RemoteEvent("dentist", None, moved))

    def block_start() -> str:
        return next(str(e["event"]["start"]) for e in wix_side(store)
                    if e["event"]["title"] == "Dentist")  # fmt: skip

    wait_until(lambda: block_start() == moved.start.isoformat(), 30, "the block to move")

    # Disconnecting stops the channel and takes back every copy, on both sides.
    assert client.post(f"{V2}/connections/{connection_id}/disconnect").status_code == 200
    def left() -> tuple[list[str], list[str], list[str]]:  # channels, toy titles, Wix titles
        return list(server.channels), toy_titles(server, "ann-main"), titles(wix_side(store))

    wait_until(lambda: left() == ([], ["Dentist"], ["Yoga"]), 60,
               lambda: f"the clean-up; left: {left()}")  # fmt: skip
