"""Handing work to the workers after a commit, from the API process. It needs no worker
context: only the calendar gate (on Redis), which keeps a burst of requests for one calendar
to one queued sync, made once per app from its settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis
from fastapi import Request

from api.errors import ApiError, unavailable
from tasks.coordination import CalendarGate
from tasks.enqueue import gate_for, request_syncs


def gate(state: Any) -> CalendarGate:
    if getattr(state, "gate", None) is None:
        state.gate = gate_for(state.settings)
    found: CalendarGate = state.gate
    return found


def redis_client(state: Any) -> redis.Redis:
    return gate(state).client


def sync_now(request: Request, calendar_ids: Iterable[str], trigger: str) -> bool:
    """Enqueue a full sync of each calendar over one producer; False if the broker could not
    take them all (the caller answers so, and the client repeats the call)."""
    wanted = list(calendar_ids)
    sent = request_syncs(gate(request.app.state), wanted, trigger, full=True)
    return len(sent) == len(wanted)


def broker_down() -> ApiError:
    return unavailable("saved, but the work queue is unreachable; repeat the call to hand it over")
