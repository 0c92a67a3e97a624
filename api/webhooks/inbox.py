"""What every webhook receiver does after verifying: record, commit, then hand to the broker.

The HTTP answer goes out only after the commit, so an acknowledged notification is never lost;
a duplicate (same idempotency key) is acknowledged and dropped. If the broker is down the
notification stays recorded and the inbox sweeper enqueues it later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from api.handover import gate
from models.db import session_scope
from models.notifications import mark_enqueued
from tasks.enqueue import request_sync


def enqueue_recorded(state: Any, recorded: Iterable[tuple[int, str]]) -> None:
    """Ask for a sync of each (inbox item, calendar) just committed; mark what reached the
    broker. A burst is held back a moment (debounce) so one run reads it all."""
    delay = state.settings.notification_debounce_seconds
    sent = [item for item, calendar in recorded
            if request_sync(gate(state), calendar, "webhook", delay=delay)]  # fmt: skip
    if sent:
        with session_scope(state.engine) as db:
            mark_enqueued(db, sent)
