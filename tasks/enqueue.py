"""Asking for a sync: what the API and beat call after their database commit."""

from __future__ import annotations

import contextlib
import logging

import redis
from kombu.exceptions import OperationalError

from tasks.context import WorkerContext

log = logging.getLogger(__name__)


def request_sync(
    context: WorkerContext, calendar_id: str, trigger: str, full: bool = False,
    delay: float = 0.0,
) -> bool:  # fmt: skip
    """Enqueue one sync of the calendar unless one is already waiting. False when the broker
    could not be reached: the inbox sweeper tries again, so nothing recorded is lost.

    `delay` holds the task back a moment so that a burst of notifications (including the
    echoes of our own writes) is read by one run instead of many."""
    from tasks.calendar_sync import sync_calendar

    try:
        if not full and not context.gate.mark_queued(calendar_id):
            return True  # a waiting task will read this change too
        # No publish retries here: a webhook must answer fast, and the sweeper retries.
        sync_calendar.apply_async(
            args=[calendar_id, trigger, full], retry=False, countdown=delay or None
        )
    except (OperationalError, redis.RedisError):
        _forget_queued(context, calendar_id)
        log.warning("broker unreachable; left for the sweeper", extra={"calendar_id": calendar_id})
        return False
    return True


def _forget_queued(context: WorkerContext, calendar_id: str) -> None:
    with contextlib.suppress(redis.RedisError):  # if Redis is down, the mark expires by itself
        context.gate.clear_queued(calendar_id)
