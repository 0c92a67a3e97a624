"""The store and calsync's API as processes of their own, so a benchmark's interpreter is not
the limit of what it measures (in production the API never shares a process with a provider)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


@contextmanager
def process(command: list[str], env: dict[str, str], name: str) -> Iterator[None]:
    log = Path(f"/tmp/calsync-bench-{name}-{os.getpid()}.log")
    child = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                             start_new_session=True)  # fmt: skip
    try:
        yield
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(60)


def store_command(port: int, slow_ms: int = 0) -> list[str]:
    """The store on `port`; `slow_ms` holds every provider call back that long, as a real
    provider's round trip would."""
    code = ("import uvicorn; from sandbox.store import StoreState, create_app; "
            f"uvicorn.run(create_app(StoreState(slow_ms={slow_ms})), host='127.0.0.1', "
            f"port={port}, log_level='warning')")  # fmt: skip
    return [sys.executable, "-c", code]


@contextmanager
def api_process(env: dict[str, str], port: int) -> Iterator[str]:
    """calsync's API on `port` with the settings in `env`, up; its base address."""
    api_env = {**env, "CALSYNC_API_PORT": str(port), "CALSYNC_API_HOST": "127.0.0.1"}
    with process([sys.executable, "-m", "workers", "api"], api_env, "api"):
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/healthz")
        yield url


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")
