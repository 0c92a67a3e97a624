"""`calsync up`: the whole service on one machine in one supervised process group."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from config import Settings, load_settings
from config.logging import configure_logging, resolve_format
from models.migrate import upgrade
from sandbox.server import free_port
from workers.console import Console, ConsoleHandler
from workers.demo.run import world_file
from workers.embedded import local_secrets, redis_command, redis_log_entry
from workers.supervisor import Supervisor

ROLES = ("api", "worker", "beat", "flower")


def child_env(settings: Settings, overrides: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env["CALSYNC_DATA_DIR"] = str(settings.data_dir.resolve())
    env["CALSYNC_DATABASE_URL"] = settings.resolved_database_url()
    env["CALSYNC_LOG_FORMAT"] = "json"  # records the console can read, whatever it prints
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def wait_for_redis(url: str, timeout: float = 15.0) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not answer on {url}") from None
            time.sleep(0.1)


def run(settings: Settings, demo: bool = False) -> None:
    # The database, the broker's data and the generated secrets: the user's alone.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    overrides: dict[str, str] = {}
    generated = local_secrets(settings.data_dir)
    if not settings.encryption_keys:
        overrides["CALSYNC_ENCRYPTION_KEYS"] = generated["CALSYNC_ENCRYPTION_KEYS"]
    if settings.flower_basic_auth is None:
        overrides["CALSYNC_FLOWER_BASIC_AUTH"] = generated["CALSYNC_FLOWER_BASIC_AUTH"]
    console = _console(settings)
    supervisor = Supervisor(output=console.child_output)
    supervisor.install_signal_handlers()
    try:
        final = _start_children(settings, supervisor, overrides, demo,
                                generated["REDIS_PASSWORD"])  # fmt: skip
    except BaseException:
        console.release()  # what the children said before they failed
        supervisor.stop_all()
        raise
    console.header(_announce(final, embedded_redis=settings.uses_embedded_broker))
    supervisor.run(on_tick=_ReadinessAnnouncer(final, console.say).check)


def _console(settings: Settings) -> Console:
    """Text on a terminal, JSON lines otherwise (or as `CALSYNC_LOG_FORMAT` says); `calsync
    up`'s own records go the same way."""
    fmt = resolve_format(settings.log_format, sys.stdout)
    console = Console(fmt, verbose=settings.log_level == "DEBUG",
                      readers={"redis": redis_log_entry})  # fmt: skip
    configure_logging(settings.log_level, handler=ConsoleHandler(console))
    return console


def _start_children(
    settings: Settings, supervisor: Supervisor, overrides: dict[str, str], demo: bool,
    redis_password: str,
) -> Settings:  # fmt: skip
    if settings.uses_embedded_broker:
        port, password = free_port(6380), redis_password
        overrides["CALSYNC_BROKER_URL"] = f"redis://:{password}@127.0.0.1:{port}/0"
        supervisor.add("redis", redis_command(port, settings.data_dir, password),
                       dict(os.environ), stops_last=True)  # fmt: skip
        wait_for_redis(overrides["CALSYNC_BROKER_URL"])
    if demo:
        overrides.update(_start_demo(settings, supervisor, child_env(settings, overrides)))
    # Validate the final settings the children will see before starting any of them.
    env = child_env(settings, overrides)
    final = load_settings(**_settings_overrides(overrides, settings))
    upgrade(final.resolved_database_url())
    for role in ROLES:
        supervisor.add(role, [sys.executable, "-m", "workers", role], env)
    return final


def _start_demo(settings: Settings, supervisor: Supervisor, env: dict[str, str],
                timeout: float = 60.0) -> dict[str, str]:  # fmt: skip
    """Start the demo world first: the other services are aimed at it by what it publishes."""
    published = world_file(settings)
    published.unlink(missing_ok=True)
    child = supervisor.add("demo", [sys.executable, "-m", "workers", "demo"], env)
    deadline = time.monotonic() + timeout
    while not published.exists():
        if child.exited() is not None or time.monotonic() > deadline:
            raise RuntimeError("the demo world did not start; its error is above")
        time.sleep(0.1)
    env_of_world: dict[str, str] = json.loads(published.read_text())["env"]
    return env_of_world


def _settings_overrides(overrides: dict[str, str], settings: Settings) -> dict[str, object]:
    values: dict[str, object] = {"database_url": settings.resolved_database_url()}
    for name, value in overrides.items():
        if name.startswith("CALSYNC_"):  # others are for libraries (the demo's CA bundle)
            values[name.removeprefix("CALSYNC_").lower()] = value
    return values


def _announce(settings: Settings, embedded_redis: bool) -> list[str]:
    """What `calsync up` prints first: one line per service with its address."""
    user = (settings.flower_basic_auth.get_secret_value().split(":", 1)[0]
            if settings.flower_basic_auth else "-")  # fmt: skip
    secrets_file = Path(settings.data_dir) / "secrets.env"
    broker = _redact(settings.broker_url or "")
    lines = [
        "calsync is starting; Ctrl-C stops everything.",
        f"  api       http://{settings.api_host}:{settings.api_port}  (/docs, /readyz, /metrics)",
        f"  flower    http://{settings.flower_host}:{settings.flower_port}  (user {user}"
        + (f", password in {secrets_file})" if secrets_file.exists() else ")"),
        f"  worker    takes tasks from {broker}",
        f"  beat      sends periodic tasks to {broker}",
    ]
    if settings.status_basic_auth or settings.flower_basic_auth:
        login = "its own login" if settings.status_basic_auth else "Flower's login"
        lines.insert(2, f"  status    http://{settings.api_host}:{settings.api_port}/status"
                        f"  (the status page; {login})")
    if settings.demo_control_url:
        lines.append("  demo      a made-up business on local sandboxes of Wix, Google, Outlook "
                     "and CalDAV (--no-demo: none)")
    if embedded_redis:
        lines.append(f"  redis     {broker}  (embedded, data in {settings.data_dir})")
    lines.append(f"  database  {_redact(settings.resolved_database_url())}")
    return lines


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


class _ReadinessAnnouncer:
    """Says so once /readyz first answers 200, so a newcomer knows it is up."""

    def __init__(self, settings: Settings, say: Callable[[str], None]) -> None:
        self.url = f"http://{settings.api_host}:{settings.api_port}/readyz"
        self.say = say
        self.started = time.monotonic()
        self.done = False

    def check(self) -> None:
        if self.done:
            return
        try:
            ready = httpx.get(self.url, timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return
        if ready:
            self.done = True
            self.say(f"ready in {time.monotonic() - self.started:.1f}s")
