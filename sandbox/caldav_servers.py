"""Real CalDAV servers on loopback: Radicale and Xandikos, for tests, benchmarks and the demo.

Each runs as a subprocess of the installed package (`python -m radicale`, `python -m xandikos`)
with its data in a temporary directory, and is stopped (and its directory removed) by `stop()`.

- Radicale checks a username and password (htpasswd, plain) and applies a rights file: the user
  owns everything under `/<user>/` except collections named `readonly-*`, which they may only
  read; an `admin` user may write everywhere (so a test can fill a read-only calendar, as the
  calendar's owner would). Tests of credentials and of read-only calendars use Radicale.
- Xandikos serves without authentication (its Basic auth needs TLS); its one principal is
  `/user/`, with the calendar home at `/user/calendars/`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.server import free_port

RADICALE_ADMIN = "admin"
_RIGHTS = """\
[admin]
user: admin
collection: .*
permissions: RrWw

[read-only calendars]
user: .+
collection: {user}/readonly-[^/]*
permissions: r

[own calendars]
user: .+
collection: {user}(/.*)?
permissions: RrWw

[root]
user: .+
collection:
permissions: R
"""
_RADICALE_CONFIG = """\
[server]
hosts = 127.0.0.1:{port}

[auth]
type = htpasswd
htpasswd_filename = {htpasswd}
htpasswd_encryption = plain
delay = 0

[rights]
type = from_file
file = {rights}

[storage]
filesystem_folder = {root}/collections

[logging]
level = warning
"""


@dataclass
class CalDAVServer:
    kind: str  # "radicale" or "xandikos"
    base_url: str  # http://127.0.0.1:PORT/
    home_path: str  # the user's calendar home, e.g. /alice/ or /user/calendars/
    username: str
    password: str
    root: Path
    process: subprocess.Popen[bytes]
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def home_url(self) -> str:
        return self.base_url.rstrip("/") + self.home_path

    @property
    def requires_auth(self) -> bool:
        return self.kind == "radicale"

    def credentials(self, user: str) -> tuple[str, str]:
        return user, self.passwords[user]

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_radicale(users: dict[str, str] | None = None, user: str = "alice") -> CalDAVServer:
    """Radicale with htpasswd users (`users`: name -> password; an admin is always added)."""
    users = dict(users or {user: "alice-secret"})
    users.setdefault(RADICALE_ADMIN, "admin-secret")
    root = Path(tempfile.mkdtemp(prefix="calsync-radicale-"))
    htpasswd = root / "users"
    htpasswd.write_text("".join(f"{name}:{secret}\n" for name, secret in users.items()))
    rights = root / "rights"
    rights.write_text(_RIGHTS)
    port = free_port()
    config = root / "config"
    config.write_text(
        _RADICALE_CONFIG.format(port=port, root=root, htpasswd=htpasswd, rights=rights)
    )
    args = ["-m", "radicale", "--config", str(config)]
    process = _spawn(args, root)
    server = CalDAVServer(
        "radicale", f"http://127.0.0.1:{port}/", f"/{user}/", user, users[user], root, process,
        passwords=users,
    )  # fmt: skip
    _wait_until_listening(server)
    return server


def start_xandikos() -> CalDAVServer:
    root = Path(tempfile.mkdtemp(prefix="calsync-xandikos-"))
    port = free_port()
    args = [
        "-m", "xandikos", "serve",
        "-d", str(root / "data"),
        "--state-dir", str(root / "state"),
        "--defaults",
        "--no-detect-systemd",
        "-l", "127.0.0.1",
        "-p", str(port),
    ]  # fmt: skip
    process = _spawn(args, root)
    server = CalDAVServer(
        "xandikos", f"http://127.0.0.1:{port}/", "/user/calendars/", "user", "", root, process,
        passwords={"user": ""},
    )  # fmt: skip
    _wait_until_listening(server)
    return server


def start(kind: str) -> CalDAVServer:
    return start_radicale() if kind == "radicale" else start_xandikos()


def _spawn(args: list[str], root: Path) -> subprocess.Popen[bytes]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "XDG_DATA_HOME": str(root / "xdg")}
    with (root / "server.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env
        )


def _wait_until_listening(server: CalDAVServer, timeout: float = 30.0) -> None:
    host, port = server.base_url.split("//", 1)[1].rstrip("/").split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (server.root / "server.log").read_text(errors="replace")
            server.stop()
            raise RuntimeError(f"{server.kind} exited with {server.process.returncode}:\n{log}")
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.kind} did not listen on {server.base_url} within {timeout}s")
