"""A connection's sync configuration (stored JSON, camelCase like the API) as a sync policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models import Connection, ExternalCalendar
from sync.policy import ConflictPolicy, ConnectionPolicy, Privacy


def policy_for(connection: Connection, calendar: ExternalCalendar) -> ConnectionPolicy:
    config: dict[str, Any] = connection.sync_config or {}
    return ConnectionPolicy(
        owner_id=calendar.id,
        tag=str(connection.provider),
        import_enabled=calendar.import_enabled,
        export_enabled=calendar.export_target,
        read_only=calendar.read_only,
        privacy=Privacy(config.get("privacy", Privacy.FULL.value)),
        block_all_day=bool(config.get("blockAllDayEvents", False)),
        block_free=bool(config.get("blockFreeEvents", False)),
        conflict_policy=ConflictPolicy(config.get("conflictPolicy", ConflictPolicy.ORIGIN_WINS)),
        clock_skew=timedelta(seconds=float(config.get("clockSkewSeconds", 5))),
    )
