"""Start calsync's own processes (worker, up, ...) as real subprocesses and stop them cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from celery import Celery

from config import Settings
from config.celery import celery_config

from .env import settings_env

Launch = Callable[..., subprocess.Popen[bytes]]
ALL_QUEUES = "ingest,sync,reconcile,maintenance"


def start(role_args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m workers <role_args>` in its own session, output to `log`."""
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "workers", *role_args],
        env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM the whole group, then SIGKILL it if it lingers; returns the exit code."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole group: for a worker whose test is over, where a warm shutdown would
    only add a second (the tasks it may hold are dropped with the test's queues)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def start_worker(settings: Settings, log: Path, name: str, queues: str = ALL_QUEUES
                 ) -> subprocess.Popen[bytes]:  # fmt: skip
    """A real worker process, returned once it answers a ping on the broker: its cold start
    (imports, connecting, declaring queues) is over before the test's own waits begin."""
    process = start(["worker", "-c", "1", "-Q", queues, "-n", f"{name}@%h"], settings_env(settings),
                    log)  # fmt: skip
    node = f"{name}@{socket.gethostname()}"
    probe = Celery("calsync-test-probe")
    probe.conf.update(celery_config(settings))

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"worker {node} exited at start:\n{log.read_text()[-3000:]}")
        return bool(probe.control.ping(destination=[node], timeout=0.5))

    try:
        wait_until(answers, 60, f"worker {node} to answer a ping", step=0)
    finally:
        probe.close()
    return process


def workers(default: Settings, folder: Path) -> Iterator[Launch]:
    """Fixture body: `launch(settings=None, queues=...)` starts a ready worker (with other
    settings if given); every one started is stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def launch(settings: Settings | None = None, queues: str = ALL_QUEUES
               ) -> subprocess.Popen[bytes]:  # fmt: skip
        name = f"w{len(started)}-{uuid.uuid4().hex[:4]}"
        started.append(start_worker(settings or default, folder / f"{name}.log", name, queues))
        return started[-1]

    yield launch
    for process in started:
        kill(process)


def wait_until(condition: Callable[[], bool], timeout: float, what: str | Callable[[], str],
               step: float = 0.1) -> None:  # fmt: skip
    """Until `condition` holds; `what` names it (a callable may describe the state it timed
    out in)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {said}")
        time.sleep(step)


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces; fields after the closing paren are fixed.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
