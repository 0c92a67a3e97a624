"""`calsync up` with no Wix app configured, as `make run` starts it on a fresh clone: a demo
business joins through calsync's real API and OAuth flows, and its three staff calendars
(Google, Outlook, CalDAV on Radicale) come into sync with the Wix schedules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness.processes import alive, descendants, stop, wait_until

from sandbox.server import free_port


@dataclass
class Demo:
    control: str
    log: Path

    def state(self) -> list[dict[str, Any]]:
        staff: list[dict[str, Any]] = httpx.get(f"{self.control}/state", timeout=10).json()["staff"]
        return staff

    def titles(self, name: str, side: str) -> list[str]:
        staff = next(s for s in self.state() if s["name"] == name)
        return sorted(e["title"] for e in staff[side])


def in_sync(staff: dict[str, Any]) -> bool:
    def seen(side: str) -> list[tuple[str, str, str]]:
        return sorted((e["title"], e["start"], e["end"]) for e in staff[side])

    return bool(staff["own"]) and seen("wix") == seen("own")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    api_port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    env |= {"CALSYNC_API_PORT": str(api_port), "CALSYNC_FLOWER_PORT": str(flower_port),
            "CALSYNC_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}"}  # fmt: skip
    log = tmp_path / "up.log"
    up = subprocess.Popen([sys.executable, "-m", "workers", "up"], cwd=tmp_path, env=env,
                          stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    published = tmp_path / ".calsync/demo.json"
    try:
        wait_until(published.exists, 60, lambda: f"the demo world:\n{log.read_text()[-3000:]}")
        yield Demo(json.loads(published.read_text())["env"]["CALSYNC_DEMO_CONTROL_URL"], log)
        everything = descendants(up.pid)
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0, log.read_text()[-3000:]
        wait_until(lambda: not any(alive(pid) for pid in everything), 10, "children to exit")
    finally:
        stop(up)


def test_make_run_shows_a_demo_business_in_sync_and_follows_each_change(demo: Demo) -> None:
    def everyone_in_sync() -> bool:
        staff = demo.state()
        return len(staff) == 3 and all(in_sync(each) for each in staff)

    wait_until(everyone_in_sync, 60, lambda: f"both sides in sync:\n{demo.log.read_text()[-3000:]}")
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

    refused = httpx.post(f"{demo.control}/busy", json={"system": "fax"})
    assert refused.status_code == 400 and "system" in refused.json()["error"]
    assert httpx.post(f"{demo.control}/sessions", json={"staff": "Zed"}).status_code == 400
    assert httpx.post(f"{demo.control}/sessions/nope/move").status_code == 404
