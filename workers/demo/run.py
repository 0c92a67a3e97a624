"""`calsync demo`: start the demo world, tell `calsync up` how to reach it (`demo.json` in the
data directory), wait for calsync's API, then let the business join and its staff connect."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType

import httpx

from config import Settings
from models.db import engine_for
from sandbox.server import ServedApp, serve_in_thread
from workers.demo.connect import Connector, forget, install
from workers.demo.control import create_control
from workers.demo.people import People
from workers.demo.seed import seed
from workers.demo.world import DemoWorld

WORLD_FILE = "demo.json"
log = logging.getLogger(__name__)


def world_file(settings: Settings) -> Path:
    return settings.data_dir / WORLD_FILE


def run(settings: Settings) -> None:
    api = str(settings.public_base_url).rstrip("/")  # what providers and people reach
    folder = settings.data_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    world = DemoWorld.start(api, folder)
    control: ServedApp | None = None
    try:
        people = People(world, "")
        control = serve_in_thread(create_control(people))
        _publish(settings, world, control)
        _wait_until_ready(api)
        try:
            join(world, people, settings, api)
            log.info("demo: three staff calendars connected; watch them at %s/status", api)
        except Exception:  # the services keep running without it; a restart would not help
            log.exception("the demo business could not join calsync")
        _wait_for_stop()
    finally:
        if control is not None:
            control.stop()
        world.stop()


def join(world: DemoWorld, people: People, settings: Settings, api: str) -> None:
    """The business installs the app, books its week and connects each staff calendar (the
    previous run's demo business is forgotten first)."""
    engine = engine_for(settings.resolved_database_url())
    remembered = settings.data_dir / "demo" / "instance"
    if remembered.exists():
        forget(engine, remembered.read_text().strip())
    people.instance_id, key = install(world, engine)
    remembered.write_text(people.instance_id)
    people.hire()
    seed(people)
    connector = Connector(world, api, key)
    try:
        for staff in people.staff:
            connector.connect(staff)
    finally:
        connector.close()


def _publish(settings: Settings, world: DemoWorld, control: ServedApp) -> None:
    """Written whole, then renamed: `calsync up` never reads half a file."""
    env = {**world.settings_env(), "CALSYNC_DEMO_CONTROL_URL": control.base_url}
    path = world_file(settings)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"env": env}))
    os.chmod(partial, 0o600)  # it holds the demo's client secrets
    partial.replace(path)


def _wait_until_ready(api: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api}/readyz", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"calsync's API at {api} was not ready within {timeout:.0f}s")


def _wait_for_stop() -> None:
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()
