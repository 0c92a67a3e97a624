"""The beat schedule: one entry per kind of periodic work; per-connection fan-out is in tasks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from config.settings import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    def every(seconds: float, task: str) -> dict[str, Any]:
        # `expires`: a backlog of identical periodic tasks is worth one run, not many.
        return {
            "task": task,
            "schedule": timedelta(seconds=seconds),
            "options": {"expires": seconds},
        }

    return {
        "dispatch": every(settings.dispatch_interval, "tasks.maintenance.dispatch"),
        "sweep-inbox": every(max(10, settings.inbox_sweep_after), "tasks.maintenance.sweep_inbox"),
        "renew-channels": every(900, "tasks.maintenance.renew_channels"),
        "refresh-tokens": every(300, "tasks.maintenance.refresh_tokens"),
        "prune": every(3600, "tasks.maintenance.prune"),
    }
