"""Query Events requests, cursor paging, and calsync's change cursor for one schedule.

Wix has no sync-token feed for Calendar V3 (webhooks carry the changes), so calsync reads
changes by querying the schedule's events whose `updatedDate` is at or after a watermark, over
the widest window Wix allows, cancelled ones included (docs/wix.md, "How calsync reads
changes"). The watermark is calsync's clock at the start of the previous read minus an overlap,
so a write that was in flight during that read, or a small clock difference, is re-read instead
of lost; re-reading an unchanged event is harmless (same revision: an echo).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers.errors import CursorExpired, TransientError
from providers.wix.http import WixInstance

QUERY_PATH = "/calendar/v3/events/query"
# Calendar V3 events end by 2100 at the latest; the start is any past date.
WIDE_FROM, WIDE_TO = datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
# INSTANCEs are generated occurrences of a MASTER: its series covers them.
LISTED_KINDS = ("NONE", "MASTER", "EXCEPTION")
BOTH_STATUSES = {"$in": ["CONFIRMED", "CANCELLED"]}
CURSOR_VERSION = 1


def wix_local(instant: datetime) -> str:
    """An instant as a `localDate` in UTC (queries are sent with `timeZone: UTC`)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def wix_timestamp(instant: datetime) -> str:
    """The `updatedDate` format (milliseconds, `Z`), so string comparison is time order."""
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def events_query(
    start: datetime,
    end: datetime,
    flt: dict[str, Any],
    kinds: tuple[str, ...] = LISTED_KINDS,
    limit: int = 100,
) -> dict[str, Any]:
    return {
        "query": {"filter": flt, "cursorPaging": {"limit": limit}},
        "fromLocalDate": wix_local(start),
        "toLocalDate": wix_local(end),
        "timeZone": "UTC",
        "recurrenceType": list(kinds),
    }


def query_all(api: WixInstance, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every event the query matches, following `pagingMetadata.cursors.next`."""
    limit = request["query"]["cursorPaging"]["limit"]
    while True:
        answer = api.call("POST", QUERY_PATH, request)
        events = answer.get("events")
        if not isinstance(events, list):
            raise TransientError("wix: query answer without events")
        yield from (event for event in events if isinstance(event, dict))
        paging = answer.get("pagingMetadata") or {}
        cursor = (paging.get("cursors") or {}).get("next")
        if not paging.get("hasNext") or not cursor:
            return
        # A cursor carries the whole query; the next page sends only it (and the limit).
        request = {"query": {"cursorPaging": {"cursor": cursor, "limit": limit}}}


@dataclass(frozen=True)
class ChangeCursor:
    """What `list_changes` hands out: read events updated at or after `since`; and the
    schedule's revision then, since a change of the schedule's externalCalendarOverrides
    changes every session's effective overrides without touching the sessions."""

    schedule_id: str
    since: str
    schedule_revision: str

    def encode(self) -> str:
        state = {"v": CURSOR_VERSION, "schedule": self.schedule_id, "since": self.since,
                 "scheduleRevision": self.schedule_revision}  # fmt: skip
        raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii")

    @classmethod
    def decode(cls, cursor: str, schedule_id: str) -> ChangeCursor:
        try:
            raw = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
            state = json.loads(raw)
            valid = (
                state["v"] == CURSOR_VERSION
                and state["schedule"] == schedule_id
                and isinstance(state["since"], str)
            )
            if valid:
                return cls(schedule_id, state["since"], str(state["scheduleRevision"]))
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError):
            pass
        raise CursorExpired("not a change cursor of this Wix schedule")
