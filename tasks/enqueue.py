"""Every way of handing work to the workers, for the API, beat and the tasks themselves.

One path for all: send once, never retry the publish (a webhook must answer fast), and say
False when the broker could not be reached; the caller has recorded the work already (the
inbox, a connection due for reconciliation) and a sweeper or the dispatcher sends it later.
Tasks are named, not imported, so nothing here depends on the task modules.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import redis
from celery import current_app
from kombu.exceptions import OperationalError

from config import Settings
from tasks.coordination import CalendarGate

log = logging.getLogger(__name__)

# Task names are what the broker carries (and routes by, `config.celery.TASK_ROUTES`): they stay
# as they are when code moves, so messages already queued still find their task.
SYNC_CALENDAR = "tasks.calendar_sync.sync_calendar"
FIRST_SYNC = "tasks.connections.first_sync"
RECONFIGURE = "tasks.connections.reconfigure"
DISCONNECT = "tasks.connections.disconnect"
OPEN_CHANNELS = "tasks.maintenance.open_channels"
MEND_CHANNEL = "tasks.maintenance.mend_channel"
APPROVAL_EMAIL = "tasks.mail.send_approval"
BREAK_ALERT = "tasks.mail.break_alert"
RESOLVE_CONFLICT = "tasks.connections.resolve_conflict"
REFRESH_CALENDARS = "tasks.connections.refresh_calendars"
LEARN_OWNER = "tasks.connections.learn_schedule_owner"
SET_OVERRIDES = "tasks.connections.set_overrides"


def gate_for(settings: Settings) -> CalendarGate:
    """The calendar gate a process that only enqueues needs (the API)."""
    client = redis.Redis.from_url(settings.coordination_redis_url())
    return CalendarGate(client, settings.broker_key_prefix, settings.calendar_lock_seconds)


def send(task: str, args: Sequence[Any], countdown: float | None = None) -> bool:
    try:
        current_app.send_task(task, args=list(args), countdown=countdown, retry=False)
    except (OperationalError, redis.RedisError):
        log.warning("broker unreachable", extra={"task": task})
        return False
    return True


def request_sync(gate: CalendarGate, calendar_id: str, trigger: str, full: bool = False,
                 delay: float = 0.0) -> bool:  # fmt: skip
    """One sync of the calendar unless one is already waiting (an incremental one reads every
    change that came before it starts). `delay` holds it back a moment, so that a burst of
    notifications (the echoes of our own writes among them) is read by one run."""
    try:
        if not full and not gate.mark_queued(calendar_id):
            return True
    except redis.RedisError:
        log.warning("redis unreachable", extra={"calendar_id": calendar_id})
        return False
    if send(SYNC_CALENDAR, [calendar_id, trigger, full], countdown=delay or None):
        return True
    with contextlib.suppress(redis.RedisError):  # if Redis is down, the mark expires by itself
        gate.clear_queued(calendar_id)
    return False


def request_syncs(gate: CalendarGate, calendar_ids: Sequence[str], trigger: str,
                  full: bool = False, delay: float = 0.0) -> list[str]:  # fmt: skip
    """`request_sync` for many calendars (beat's ticks, a webhook's gathered notices): one
    Redis round trip for the marks and one broker connection for the messages. Answers the
    calendars now queued."""
    try:
        wanted = list(calendar_ids) if full else gate.mark_all_queued(calendar_ids)
    except redis.RedisError:
        log.warning("redis unreachable", extra={"calendars": len(calendar_ids)})
        return []
    sent = publish_all(SYNC_CALENDAR, [[c, trigger, full] for c in wanted], delay)
    for calendar_id in wanted[sent:]:
        with contextlib.suppress(redis.RedisError):
            gate.clear_queued(calendar_id)
    skipped = set(calendar_ids) - set(wanted)  # a sync was waiting already: it will do
    return [c for c in calendar_ids if c in skipped] + wanted[:sent]


def publish_all(task: str, many_args: Sequence[Sequence[Any]], delay: float = 0.0) -> int:
    """Send the task once per argument list over one producer, each held back `delay`
    seconds; how many went out."""
    sent = 0
    try:
        with current_app.producer_or_acquire() as producer:
            for args in many_args:
                current_app.send_task(task, args=list(args), producer=producer, retry=False,
                                      countdown=delay or None)  # fmt: skip
                sent += 1
    except (OperationalError, redis.RedisError):
        log.warning("broker unreachable", extra={"task": task, "unsent": len(many_args) - sent})
    return sent


def request_first_sync(connection_id: str) -> bool:
    return send(FIRST_SYNC, [connection_id])


def request_reconfigure(
    connection_id: str, withdraw_imports: list[str], withdraw_exports: list[str],
    resync: list[str], create_dedicated: bool = False,
) -> bool:  # fmt: skip
    args = [connection_id, withdraw_imports, withdraw_exports, resync, create_dedicated]
    return send(RECONFIGURE, args)


def request_disconnect(connection_id: str) -> bool:
    return send(DISCONNECT, [connection_id])


def request_channels(connection_id: str) -> bool:
    return send(OPEN_CHANNELS, [connection_id])


def request_channel_mend(channel_id: str, event: str) -> bool:
    """A channel the provider says needs renewing or opening anew (`providers.push`)."""
    return send(MEND_CHANNEL, [channel_id, event])


def request_approval_email(request_id: str) -> bool:
    return send(APPROVAL_EMAIL, [request_id])


def request_break_alert(alert_id: str) -> bool:
    """Tell a connection's business it broke (`tasks.alerts`)."""
    return send(BREAK_ALERT, [alert_id])


def request_calendar_refresh(connection_id: str) -> bool:
    """List the account's calendars again (`tasks.calendar_list`)."""
    return send(REFRESH_CALENDARS, [connection_id])


def request_calendar_refreshes(connection_ids: Sequence[str]) -> int:
    """`request_calendar_refresh` for many connections over one producer; how many went out."""
    return publish_all(REFRESH_CALENDARS, [[c] for c in connection_ids])


def request_owner_lookup(connection_id: str) -> bool:
    """Read whom the connection's Wix schedule belongs to (`tasks.schedule_owner`)."""
    return send(LEARN_OWNER, [connection_id])


def request_owner_lookups(connection_ids: Sequence[str]) -> int:
    """`request_owner_lookup` for many connections over one producer; how many went out."""
    return publish_all(LEARN_OWNER, [[c] for c in connection_ids])


def request_overrides(connection_id: str, session_id: str | None,
                      overrides: dict[str, str | None]) -> bool:  # fmt: skip
    """Write `externalCalendarOverrides` to the schedule or a session (`tasks.overrides`)."""
    return send(SET_OVERRIDES, [connection_id, session_id, overrides])


def request_conflict_resolution(conflict_id: str) -> bool:
    """Keep a conflict's losing value on both sides (`tasks.resolution`)."""
    return send(RESOLVE_CONFLICT, [conflict_id])
