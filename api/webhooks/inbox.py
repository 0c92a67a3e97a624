"""What a receiver does after recording: hand the work to the broker (the Wix receiver for
its own requests, `intake` for the gathered requests of the calendar systems).

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
from tasks.enqueue import request_syncs


def enqueue_recorded(state: Any, recorded: Iterable[tuple[int, str]]) -> None:
    """Ask for a sync of each calendar of the (inbox item, calendar) pairs just committed,
    once per calendar, in one gate round trip over one producer. The rows were recorded as
    handed over; those of a calendar the broker did not take go to the sweeper instead. A
    burst is held back a moment (debounce) so one run reads it all."""
    by_calendar: dict[str, list[int]] = {}
    for item, calendar in recorded:
        by_calendar.setdefault(calendar, []).append(item)
    if not by_calendar:
        return
    delay = state.settings.notification_debounce_seconds
    taken = set(request_syncs(gate(state), list(by_calendar), "webhook", delay=delay))
    to_sweeper(state, [i for c, items in by_calendar.items() if c not in taken for i in items])


def to_sweeper(state: Any, items: list[int]) -> None:
    """Rows recorded as handed to the broker that it did not take: back to `RECEIVED`."""
    if items:
        with session_scope(state.engine) as db:
            mark_received(db, items)
