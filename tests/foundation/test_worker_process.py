from __future__ import annotations

import uuid
from pathlib import Path

from harness.processes import start, stop

from config import Settings
from tasks.health import ping
from workers.celery_app import create_celery


def test_a_real_worker_consumes_a_real_task_from_redis(
    settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    create_celery(settings)
    token = uuid.uuid4().hex
    # Sent before the worker exists: the message waits in Redis until a worker takes it.
    result = ping.apply_async(args=[token])
    worker = start(
        ["worker", "-c", "1", "-n", f"test-{token[:6]}@%h"], env, tmp_path / "worker.log"
    )
    try:
        reply = result.get(timeout=60)
    finally:
        code = stop(worker)
    assert reply["token"] == token
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]
