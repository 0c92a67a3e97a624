"""A round trip through broker and worker, used by `calsync check` and the deployment tests."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from celery import shared_task


@shared_task(name="tasks.health.ping")
def ping(token: str) -> dict[str, str]:
    """Echo `token` with the worker's host and time, proving a worker consumed this message."""
    return {"token": token, "host": socket.gethostname(), "at": datetime.now(UTC).isoformat()}
