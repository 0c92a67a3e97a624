"""`calsync up` as `make run` starts it on a fresh clone (no Wix app configured, so with its demo
world), in a private data directory on free ports, and the demo's control to look and act."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sandbox.server import free_port

from .processes import alive, descendants, stop, wait_until


@dataclass
class Demo:
    api: str  # calsync's API, e.g. http://127.0.0.1:PORT
    control: str  # the demo world's control
    folder: Path  # the working directory; data in .calsync/
    log: Path

    def state(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.control}/state", timeout=10)
        answer.raise_for_status()
        staff: list[dict[str, Any]] = answer.json()["staff"]
        return staff

    def titles(self, name: str, side: str) -> list[str]:
        staff = next(s for s in self.state() if s["name"] == name)
        return sorted(e["title"] for e in staff[side])

    def everyone_in_sync(self) -> bool:
        staff = self.state()
        return len(staff) == 3 and all(in_sync(each) for each in staff)

    def secret(self, name: str) -> str:
        lines = (self.folder / ".calsync/secrets.env").read_text().split()
        return dict(line.split("=", 1) for line in lines)[name]

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def in_sync(staff: dict[str, Any]) -> bool:
    def seen(side: str) -> list[tuple[str, str, str]]:
        return sorted((e["title"], e["start"], e["end"]) for e in staff[side])

    return bool(staff["own"]) and seen("wix") == seen("own")


@contextmanager
def running_demo(folder: Path, **settings: str) -> Iterator[Demo]:
    """`calsync up` with `CALSYNC_<name>` settings added; stopped by SIGTERM afterwards, which
    must end it and every process it started."""
    api_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    env |= {"CALSYNC_API_PORT": str(api_port), "CALSYNC_FLOWER_PORT": str(free_port()),
            "CALSYNC_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
            **{f"CALSYNC_{name.upper()}": value for name, value in settings.items()}}  # fmt: skip
    log = folder / "up.log"
    published = folder / ".calsync/demo.json"
    published.unlink(missing_ok=True)  # a previous run's, in the same folder
    up = subprocess.Popen([sys.executable, "-m", "workers", "up"], cwd=folder, env=env,
                          stdout=log.open("wb"), stderr=subprocess.STDOUT,
                          start_new_session=True)  # fmt: skip
    try:
        wait_until(published.exists, 60, lambda: f"the demo world:\n{log.read_text()[-3000:]}")
        control = json.loads(published.read_text())["env"]["CALSYNC_DEMO_CONTROL_URL"]
        yield Demo(f"http://127.0.0.1:{api_port}", control, folder, log)
        everything = descendants(up.pid)
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0, log.read_text()[-3000:]
        wait_until(lambda: not any(alive(pid) for pid in everything), 10, "children to exit")
    finally:
        stop(up)
