"""The beat schedule: one entry per kind of periodic work; per-connection fan-out is in tasks."""

from __future__ import annotations

from typing import Any

from config.settings import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Entries are added by the features that need them (dispatcher, renewals, sweeps)."""
    return {}
