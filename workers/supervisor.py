"""A small process supervisor for `calsync up`: start children, restart the ones that die, stop all.

Each child runs in its own session so that stopping it also stops what it forked (Celery's pool).
With an `output`, each line a child writes (stdout and stderr) is handed to it with the child's
name, so one console can reformat them all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0

# Where a child's output lines go: (child name, line).
Output = Callable[[str, str], None]


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    # Infrastructure (the embedded Redis) stops last, after the processes that use it.
    stops_last: bool = False
    output: Output | None = None
    restarts: int = 0
    restart_at: float = 0.0
    started_at: float = field(default=0.0)
    reader: threading.Thread | None = None

    def start(self) -> None:
        piped = subprocess.PIPE if self.output else None
        self.process = subprocess.Popen(
            self.argv, env=self.env, start_new_session=True, stdout=piped,
            stderr=subprocess.STDOUT if self.output else None,
        )  # fmt: skip
        self.started_at = time.monotonic()
        if self.output and self.process.stdout is not None:
            self.reader = threading.Thread(
                target=_pump, args=(self.process.stdout, self.name, self.output),
                name=f"output-{self.name}", daemon=True,
            )  # fmt: skip
            self.reader.start()
        log.debug("started %s", self.name, extra={"child": self.name, "pid": self.process.pid})

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


def _pump(stream: IO[bytes], name: str, output: Output) -> None:
    with stream:
        for raw in iter(stream.readline, b""):
            output(name, raw.decode(errors="replace"))


class Supervisor:
    def __init__(self, stop_timeout: float = 20.0, output: Output | None = None) -> None:
        self.children: list[Child] = []
        self.stop_timeout = stop_timeout
        self.output = output
        self._stopping = False

    def add(
        self, name: str, argv: list[str], env: dict[str, str], stops_last: bool = False
    ) -> Child:
        child = Child(name, argv, env, stops_last=stops_last, output=self.output)
        self.children.append(child)
        child.start()
        return child

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self, on_tick: Callable[[], None] | None = None, tick: float = 0.5) -> None:
        """Watch the children until asked to stop, then stop them all."""
        try:
            while not self._stopping:
                self._restart_dead()
                if on_tick:
                    on_tick()
                time.sleep(tick)
        finally:
            self.stop_all()

    def _restart_dead(self) -> None:
        now = time.monotonic()
        for child in self.children:
            code = child.exited()
            if code is None:
                continue
            if child.restart_at == 0.0:
                # A child that ran for a while earns a fast restart; a crash loop backs off.
                uptime = now - child.started_at
                child.restarts = 0 if uptime > 60 else child.restarts + 1
                delay = min(MAX_BACKOFF, 0.5 * 2**child.restarts)
                child.restart_at = now + delay
                log.warning(
                    "%s exited with %s; restarting in %.1fs",
                    child.name, code, delay, extra={"child": child.name, "exit_code": code},
                )  # fmt: skip
            elif now >= child.restart_at:
                child.restart_at = 0.0
                child.start()
                log.info("restarted %s", child.name, extra={"child": child.name})

    def stop_all(self) -> None:
        """Stop the services, then the infrastructure they use."""
        log.info("stopping")
        self._stop([c for c in self.children if not c.stops_last])
        self._stop([c for c in self.children if c.stops_last])

    def _stop(self, children: list[Child]) -> None:
        """SIGTERM every group, wait, then SIGKILL what is left."""
        for child in children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
            # Pool processes may outlive their parent; the group kill reaches them too.
            child.signal_group(signal.SIGKILL)
            child.process.wait()
            if child.reader is not None:
                child.reader.join(timeout=2)  # its last lines (why it stopped) are shown
