"""What `calsync up` prints: on a terminal, one line per service with its address, then one
short human line per log record, with no banners; JSON lines otherwise."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Literal

from harness.clock import now
from harness.processes import descendants, stop, wait_until

from config.logging import resolve_format
from sandbox.server import free_port
from workers.console import Console
from workers.embedded import redis_log_entry

HUMAN = re.compile(r"^\d\d:\d\d:\d\d (\w+) +(DEBUG|INFO|WARNING|ERROR|CRITICAL) +\S")
BANNERS = (
    "celery@", "-------------- ", "[tasks]", "[queues]", "celery beat v", "Running mode=",
    "oO0OoO0OoO0Oo", "You're running the worker with superuser", "Visit me at",
    "Registered tasks", "Uvicorn running on", "Configuration ->", "Inspect method",
    "tasks.health.ping",  # a line per task: received, succeeded
)  # fmt: skip


def record(level: str, logger: str, msg: str, **fields: object) -> str:
    return json.dumps({"ts": now().isoformat(timespec="milliseconds"), "level": level,
                       "logger": logger, "msg": msg, **fields})  # fmt: skip


def redis_line(role: str, mark: str, message: str) -> str:
    """A line of Redis's log: `pid:role day month year time level message`."""
    return f"9:{role} {now():%d %b %Y %H:%M:%S}.869 {mark} {message}"


def console(fmt: Literal["json", "text"], verbose: bool = False) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(fmt, verbose=verbose, readers={"redis": redis_log_entry}, stream=out), out


def test_lines_before_the_header_wait_for_it() -> None:
    shown, out = console("text")
    shown.child_output("worker", record("ERROR", "tasks.runner", "sync failed"))
    assert out.getvalue() == ""
    shown.header(["calsync is starting", "  api       http://127.0.0.1:8000"])
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["calsync is starting", "  api       http://127.0.0.1:8000"]
    assert HUMAN.match(lines[2]) and lines[2].endswith("sync failed")


def test_text_keeps_ours_and_every_warning_but_not_library_chatter() -> None:
    shown, out = console("text")
    shown.release()
    shown.child_output("worker", record("INFO", "celery.app.trace", "Task x succeeded in 0.1s"))
    shown.child_output("api", record("INFO", "uvicorn.error", "Application startup complete."))
    shown.child_output("api", record("INFO", "api.oauth.callback", "OAuth connect refused"))
    shown.child_output("flower", record("WARNING", "flower.inspector", "Broker gone"))
    trace = 'Traceback (most recent call last):\n  File "x.py"\nValueError: bad\nnext\n'
    shown.child_output("worker", record("ERROR", "celery.app.trace", "Task y failed",
                                        exc=trace.replace("\nnext\n", "\n")))  # fmt: skip
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert all(HUMAN.match(line) for line in lines)
    assert [re.split(r" +", line)[1:3] for line in lines] == [
        ["api", "INFO"], ["flower", "WARNING"], ["worker", "ERROR"]]
    assert lines[2].endswith("Task y failed (ValueError: bad)")

    verbose, everything = console("text", verbose=True)
    verbose.release()
    verbose.child_output("worker", record("INFO", "celery.app.trace", "Task x succeeded"))
    assert "Task x succeeded" in everything.getvalue()


def test_json_lines_name_the_service_and_keep_the_record() -> None:
    shown, out = console("json")
    shown.header(["calsync is starting", "  api       http://127.0.0.1:8000"])
    shown.child_output("worker", record("ERROR", "tasks.runner", "failed", calendar_id="c1",
                                        exc="Traceback\nKeyError: 'x'"))  # fmt: skip
    shown.child_output("worker", "worker: Warm shutdown (MainProcess)\n")
    shown.child_output("redis", redis_line("C", "#", "Redis version=6.2.14"))
    shown.child_output("redis", redis_line("M", "#", "WARNING Memory overcommit"))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["msg"] for line in lines[:2]] == ["calsync is starting",
                                                   "api http://127.0.0.1:8000"]  # fmt: skip
    failed = lines[2]
    assert (failed["service"], failed["level"], failed["calendar_id"]) == ("worker", "ERROR", "c1")
    assert failed["msg"] == "failed" and "KeyError" in failed["exc"]
    assert (lines[3]["service"], lines[3]["level"]) == ("worker", "INFO")
    assert (lines[4]["service"], lines[4]["msg"]) == ("redis", "Memory overcommit")
    assert len(lines) == 5


def test_a_printed_traceback_is_an_error_and_other_prints_are_news() -> None:
    shown, out = console("text")
    shown.release()
    for line in ("demo: three calendars connected", "Traceback (most recent call last):",
                 '  File "x.py", line 1, in <module>', "    start()",
                 "ImportError: no module named x", "restarting"):  # fmt: skip
        shown.child_output("demo", line + "\n")
    levels = [re.split(r" +", line)[2] for line in out.getvalue().splitlines()]
    assert levels == ["INFO", "ERROR", "ERROR", "ERROR", "ERROR", "INFO"]


def test_routine_redis_lines_are_left_out() -> None:
    assert redis_log_entry(redis_line("C", "#", "Configuration loaded")) is None
    assert redis_log_entry("9:signal-handler (1796665141) Received SIGTERM scheduling") is None
    assert redis_log_entry(redis_line("M", "#", "Short read or OOM loading DB")) == (
        "WARNING", "Short read or OOM loading DB")
    assert redis_log_entry(redis_line("M", "*", "Background AOF rewrite started")) == (
        "INFO", "Background AOF rewrite started")


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    main, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal, os.fdopen(main, "rb"):
        assert resolve_format("auto", terminal) == "text"
        assert resolve_format("json", terminal) == "json"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"


class Terminal:
    """A pseudo-terminal whose output is collected as it comes."""

    def __init__(self) -> None:
        self.main, self.follower = os.openpty()
        self.output = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.main, 65536)
            except OSError:  # every writer is gone
                return
            if not data:
                return
            self.output += data

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace").replace("\r\n", "\n")


def test_on_a_terminal_up_names_its_services_then_prints_one_short_line_per_record(
    tmp_path: Path,
) -> None:
    api_port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    env |= {"CALSYNC_API_PORT": str(api_port), "CALSYNC_FLOWER_PORT": str(flower_port)}
    terminal = Terminal()
    up = subprocess.Popen(
        [sys.executable, "-m", "workers", "up", "--no-demo"], cwd=tmp_path, env=env,
        stdin=terminal.follower, stdout=terminal.follower, stderr=terminal.follower,
        start_new_session=True,
    )  # fmt: skip
    os.close(terminal.follower)
    try:
        wait_until(lambda: " ready in " in terminal.text, 60, lambda: terminal.text)
        # A task through the worker, which Celery would log twice at INFO.
        port = re.findall(r"redis://\*\*\*@127\.0\.0\.1:(\d+)/0", terminal.text)[0]
        data = str(tmp_path / ".calsync")
        secrets = dict(line.split("=", 1) for line in Path(data, "secrets.env").read_text().split())
        broker = f"redis://:{secrets['REDIS_PASSWORD']}@127.0.0.1:{port}/0"
        check = subprocess.run(
            [sys.executable, "-m", "workers", "check", "--timeout", "30"], cwd=tmp_path,
            env=env | {"CALSYNC_BROKER_URL": broker, "CALSYNC_DATA_DIR": data},
            capture_output=True, timeout=60,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
        # A child that dies is a warning a person sees.
        flower = next(pid for pid in descendants(up.pid) if _role(pid) == "flower")
        os.kill(flower, signal.SIGKILL)
        wait_until(lambda: "flower exited" in terminal.text, 10, lambda: terminal.text)
        up.send_signal(signal.SIGINT)  # Ctrl-C
        assert up.wait(60) == 0, terminal.text
    finally:
        stop(up)
    terminal.reader.join(10)
    text = terminal.text
    header, _, rest = text.partition("\n  database ")
    services = {line.split()[0]: line for line in header.splitlines() if line.startswith("  ")}
    assert set(services) == {"api", "status", "flower", "worker", "beat", "redis"}, header
    assert f"http://127.0.0.1:{api_port}" in services["api"]
    assert f"http://127.0.0.1:{api_port}/status" in services["status"]
    assert f"http://127.0.0.1:{flower_port}" in services["flower"]
    for name in ("worker", "beat", "redis"):
        assert re.search(r"redis://\*\*\*@127\.0\.0\.1:\d+/0", services[name]), services[name]
    logged = [line for line in rest.splitlines()[1:] if line.strip()]
    assert logged and all(HUMAN.match(line) for line in logged), text
    assert any(re.search(r" up +WARNING +flower exited", line) for line in logged), text
    for banner in BANNERS:
        assert banner not in text, f"{banner!r} in:\n{text}"


def _role(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    return command[-2].decode() if command[-1:] == [b""] else command[-1].decode()
