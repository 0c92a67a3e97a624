"""What the Wix receiver does after verifying: record, commit, then hand to the broker (the
receiver of the calendar systems does the same for many requests at once: `intake`).

The HTTP answer goes out only after the commit, so an acknowledged notification is never lost;
a duplicate (same idempotency key) is acknowledged and dropped. Rows are recorded as handed to
the broker, which saves a second write per notification; if the broker is down they go back
to `RECEIVED` and the inbox sweeper enqueues them later (as it does rows handed over long ago
and never done, should this process die in between).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from api.handover import gate
from models.db import session_scope
from models.notifications import mark_received
from tasks.enqueue import request_sync


def enqueue_recorded(state: Any, recorded: Iterable[tuple[int, str]]) -> None:
    """Ask for a sync of each calendar of the (inbox item, calendar) pairs just committed,
    once per calendar. The rows were recorded as handed over; those of a calendar the broker
    did not take are handed to the sweeper instead. A burst is held back a moment (debounce)
    so one run reads it all."""
    delay = state.settings.notification_debounce_seconds
    by_calendar: dict[str, list[int]] = {}
    for item, calendar in recorded:
        by_calendar.setdefault(calendar, []).append(item)
    refused = [item for calendar, items in by_calendar.items()
               if not request_sync(gate(state), calendar, "webhook", delay=delay)
               for item in items]  # fmt: skip
    if refused:
        with session_scope(state.engine) as db:
            mark_received(db, refused)
