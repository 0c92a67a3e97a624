from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis
from harness.processes import alive, descendants, start, stop, wait_until

from sandbox.server import free_port


def status(url: str, auth: tuple[str, str] | None = None) -> int:
    try:
        return httpx.get(url, auth=auth, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def cmdlines(pids: set[int]) -> list[str]:
    found = []
    for pid in pids:
        try:
            found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def api_pid(pids: set[int]) -> int:
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if command[-2:] == [b"api", b""] or command[-1:] == [b"api"]:
            return pid
    raise AssertionError("no api child found")


def test_calsync_up_runs_everything_restarts_children_and_stops_cleanly(tmp_path: Path) -> None:
    api_port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    env |= {"CALSYNC_API_PORT": str(api_port), "CALSYNC_FLOWER_PORT": str(flower_port)}
    up = subprocess.Popen(
        [sys.executable, "-m", "workers", "up", "--no-demo"], cwd=tmp_path, env=env,
        stdout=(tmp_path / "up.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    log = lambda: (tmp_path / "up.log").read_text(errors="replace")[-4000:]  # noqa: E731
    try:
        wait_until(lambda: status(f"http://127.0.0.1:{api_port}/readyz") == 200, 60, "readyz")
        secrets = dict(
            line.split("=", 1) for line in (tmp_path / ".calsync/secrets.env").read_text().split()
        )
        user, password = secrets["CALSYNC_FLOWER_BASIC_AUTH"].split(":", 1)
        flower = f"http://127.0.0.1:{flower_port}/"
        wait_until(lambda: status(flower, (user, password)) == 200, 60, "flower")
        assert status(flower) == 401
        assert status(flower, (user, "wrong")) == 401
        assert (tmp_path / ".calsync/calsync.db").exists()
        assert not (tmp_path / ".calsync/demo.json").exists()  # --no-demo: no demo world

        # The data are the user's alone, and the embedded Redis wants its password.
        data = tmp_path / ".calsync"
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE((data / "secrets.env").stat().st_mode) == 0o600
        port = re.findall(r"redis://\*\*\*@127\.0\.0\.1:(\d+)/0", log())[0]
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=int(port)).ping()
        assert secrets["REDIS_PASSWORD"] not in log()
        assert secrets["REDIS_PASSWORD"] not in " ".join(cmdlines(descendants(up.pid)))

        # A task goes through the embedded Redis to the worker.
        broker = f"redis://:{secrets['REDIS_PASSWORD']}@127.0.0.1:{port}/0"
        check_env = env | {
            "CALSYNC_BROKER_URL": broker,
            "CALSYNC_DATA_DIR": str(tmp_path / ".calsync"),
        }
        checked = start(["check", "--timeout", "30"], check_env, tmp_path / "check.log")
        assert checked.wait(60) == 0, (tmp_path / "check.log").read_text()

        # A child that dies is started again.
        children = descendants(up.pid)
        os.kill(api_pid(children), signal.SIGKILL)
        wait_until(lambda: status(f"http://127.0.0.1:{api_port}/healthz") == 0, 10, "api down")
        wait_until(lambda: status(f"http://127.0.0.1:{api_port}/readyz") == 200, 60, "api back")
        everything = descendants(up.pid)
    except BaseException:
        print(log())
        stop(up)
        raise
    up.send_signal(signal.SIGTERM)
    assert up.wait(60) == 0, log()
    # Not a terminal: JSON lines, each naming the service that wrote it.
    records = [json.loads(line) for line in (tmp_path / "up.log").read_text().splitlines()]
    assert {"up", "worker"} <= {record["service"] for record in records}
    assert all(record["level"] and "msg" in record for record in records)
    wait_until(lambda: not any(alive(pid) for pid in everything), 10, "children to exit")
