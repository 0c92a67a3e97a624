"""The External Calendars API (v2) under `/bookings/v2/external-calendars`, one module per
concern: the providers' catalog, connections (and `connect`, making one), the sync configuration
(its rules in `sync_config`, its update in `reconfigure`), events, and status (calsync addition),
with the sync runs, conflicts and dead letters behind it (calsync additions)."""

from __future__ import annotations

from fastapi import APIRouter

from api.external_calendars import (
    calendar_refresh,
    catalog,
    conflicts,
    connections,
    dead_letters,
    events,
    notifications,
    overrides,
    reconfigure,
    runs,
    status,
)

PREFIX = "/bookings/v2/external-calendars"

router = APIRouter(prefix=PREFIX, tags=["External Calendars (v2)"])
for module in (catalog, connections, reconfigure, status, runs, conflicts, dead_letters, events,
               notifications, calendar_refresh, overrides):  # fmt: skip
    router.include_router(module.router)
