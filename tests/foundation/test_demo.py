"""`calsync up` with no Wix app configured, as `make run` starts it on a fresh clone: a demo
business joins through calsync's real API and OAuth flows, and its three staff calendars
(Google, Outlook, CalDAV on Radicale) come into sync with the Wix schedules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness.demo import Demo, running_demo
from harness.processes import wait_until
from sqlalchemy import create_engine, func, select

from api.status_page.access import form_token
from models import Connection, Tenant


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    with running_demo(tmp_path) as running:
        yield running


def test_make_run_shows_a_demo_business_in_sync_and_follows_each_change(demo: Demo) -> None:
    wait_until(demo.everyone_in_sync, 60, lambda: f"both sides in sync:\n{demo.tail()}")
    assert "demo: three staff calendars connected" in demo.log.read_text()
    alice = next(s for s in demo.state() if s["name"] == "Alice")
    assert "Yoga class" in {e["title"] for e in alice["own"]}  # the weekly class reached Google

    httpx.post(f"{demo.control}/busy", json={"system": "google"}).raise_for_status()
    wait_until(lambda: "Busy (google)" in demo.titles("Alice", "wix"), 30, "the Wix block")
    booked = httpx.post(f"{demo.control}/sessions", json={"staff": "Bob"}).json()["id"]
    wait_until(lambda: "Booked from the status page" in demo.titles("Bob", "own"), 30,
               "the session in Outlook")  # fmt: skip
    httpx.post(f"{demo.control}/sessions/{booked}/cancel").raise_for_status()
    wait_until(lambda: "Booked from the status page" not in demo.titles("Bob", "own"), 30,
               "the cancelled session gone from Outlook")  # fmt: skip
    httpx.post(f"{demo.control}/busy", json={"system": "caldav"}).raise_for_status()
    wait_until(lambda: "Busy (caldav)" in demo.titles("Carol", "wix"), 45,
               "the polled CalDAV event's Wix block")  # fmt: skip

    # The status page's buttons pass a refusal on as one, never as a 500 of their own.
    login = tuple(demo.secret("CALSYNC_FLOWER_BASIC_AUTH").split(":", 1))
    page = httpx.get(f"{demo.api}/status", auth=login).text
    tenant = re.findall(r"/status/tenants/(\w+)", page)[0]
    token = form_token(":".join(login).encode())
    answer = httpx.post(f"{demo.api}/status/panels/demo/{tenant}/cancel", auth=login,
                        data={"csrf": token, "id": "no-such-session"})  # fmt: skip
    assert answer.status_code in (400, 502) and answer.json()["details"]["field"] == "action"

    refused = httpx.post(f"{demo.control}/busy", json={"system": "fax"})
    assert refused.status_code == 400 and "system" in refused.json()["error"]
    assert httpx.post(f"{demo.control}/sessions", json={"staff": "Zed"}).status_code == 400
    assert httpx.post(f"{demo.control}/sessions/nope/move").status_code == 404


def test_a_second_make_run_replaces_the_first_demo_business(tmp_path: Path) -> None:
    for _ in range(2):
        with running_demo(tmp_path) as demo:
            wait_until(demo.everyone_in_sync, 60, lambda: f"in sync:\n{demo.tail()}")
    engine = create_engine(f"sqlite:///{tmp_path / '.calsync/calsync.db'}")
    with engine.connect() as db:
        tenants = db.scalar(select(func.count()).select_from(Tenant))
        connections = db.scalar(select(func.count()).select_from(Connection))
    engine.dispose()
    assert (tenants, connections) == (1, 3)  # the first run's, whose sandboxes are gone, left
