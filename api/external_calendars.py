"""The External Calendars API (v2) under `/bookings/v2/external-calendars`, one module per
concern: providers, connections, sync configuration, events, and status (calsync addition)."""

from __future__ import annotations

from fastapi import APIRouter

from api import (
    external_calendars_connections,
    external_calendars_events,
    external_calendars_providers,
    external_calendars_status,
    external_calendars_sync_config,
)

PREFIX = "/bookings/v2/external-calendars"

router = APIRouter(prefix=PREFIX, tags=["External Calendars (v2)"])
for module in (
    external_calendars_providers,
    external_calendars_connections,
    external_calendars_sync_config,
    external_calendars_status,
    external_calendars_events,
):
    router.include_router(module.router)
