"""Writing `externalCalendarOverrides` (the title and description a session's copy shows in
the staff member's calendar) on a schedule or on one session. Calendar V3 has no such field,
so they live in calsync's own extendedFields namespace (`events.OVERRIDES_NAMESPACE`, read by
`events.overrides_of`), written at the entity's current revision; another writer in between
makes calsync read and write once more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from providers.errors import NotFound, PreconditionFailed
from providers.wix.events import OVERRIDES_NAMESPACE
from providers.wix.http import WixInstance
from providers.wix.listing import EVENTS_PATH
from sync.event import ExternalCalendarOverrides

ATTEMPTS = 2


def namespace_of(overrides: ExternalCalendarOverrides) -> dict[str, str]:
    """The namespace's data: the fields set (none: the overrides are removed)."""
    pairs = (("title", overrides.title), ("description", overrides.description))
    return {name: value for name, value in pairs if value}


def set_schedule_overrides(api: WixInstance, schedule_id: str,
                           overrides: ExternalCalendarOverrides) -> None:  # fmt: skip
    path = f"/calendar/v3/schedules/{quote(schedule_id, safe='')}"
    data = {"namespaces": {OVERRIDES_NAMESPACE: namespace_of(overrides)}}
    _at_revision(lambda: api.call("GET", path)["schedule"], lambda current: api.call(
        "PATCH", path, {"schedule": {"id": schedule_id, "revision": current["revision"],
                                     "extendedFields": data}},
    ))  # fmt: skip


def set_session_overrides(api: WixInstance, schedule_id: str, event_id: str,
                          overrides: ExternalCalendarOverrides) -> None:  # fmt: skip
    """A session of `schedule_id` (an event of another schedule is unknown); its other
    namespaces stay as they are."""
    path = f"{EVENTS_PATH}/{quote(event_id, safe='')}"

    def read() -> dict[str, Any]:
        doc: dict[str, Any] = api.call("GET", path)["event"]
        if doc.get("scheduleId") != schedule_id:
            raise NotFound(f"wix event {event_id} is not on this schedule")
        return doc

    def write(current: dict[str, Any]) -> Any:
        kept = (current.get("extendedFields") or {}).get("namespaces") or {}
        namespaces = {**kept, OVERRIDES_NAMESPACE: namespace_of(overrides)}
        event = {"id": event_id, "revision": current["revision"],
                 "extendedFields": {"namespaces": namespaces}}  # fmt: skip
        return api.call("PATCH", path, {"event": event, "fieldmask": {"paths": ["extendedFields"]}})

    _at_revision(read, write)


def _at_revision(read: Callable[[], dict[str, Any]], write: Callable[[dict[str, Any]], object]
                 ) -> None:  # fmt: skip
    for attempt in range(1, ATTEMPTS + 1):
        try:
            write(read())
            return
        except PreconditionFailed:
            if attempt == ATTEMPTS:
                raise
