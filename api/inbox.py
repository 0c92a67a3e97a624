"""What every webhook receiver does after verifying: record, commit, then hand to the broker.

The HTTP answer goes out only after the commit, so an acknowledged notification is never lost;
a duplicate (same idempotency key) is acknowledged and dropped. If the broker is down the
notification stays recorded and the inbox sweeper enqueues it later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from models.db import session_scope
from models.notifications import mark_enqueued
from tasks.context import WorkerContext, build_context
from tasks.enqueue import request_sync


def worker_context(state: Any) -> WorkerContext:
    if getattr(state, "worker_context", None) is None:
        state.worker_context = build_context(state.settings)
    context: WorkerContext = state.worker_context
    return context


def enqueue_recorded(state: Any, recorded: Iterable[tuple[int, str]]) -> None:
    """Ask for a sync of each (inbox item, calendar) just committed; mark what reached the
    broker. A burst is held back a moment (debounce) so one run reads it all."""
    context = worker_context(state)
    delay = context.settings.notification_debounce_seconds
    sent = [item for item, calendar in recorded if request_sync(context, calendar, "webhook",
                                                                 delay=delay)]  # fmt: skip
    if sent:
        with session_scope(state.engine) as db:
            mark_enqueued(db, sent)
