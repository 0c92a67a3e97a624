"""Removing the copies calsync made for one calendar, as `sync.withdrawal` plans it, under the
calendar's lock (no sync run writes meanwhile)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from models import Connection, ExternalCalendar
from providers.errors import PermanentError, PermanentReason, TransientError
from sync.actions import Delete
from sync.reasons import Reason
from sync.side import Side
from sync.withdrawal import plan_forgetting, plan_withdrawal
from tasks.apply import apply_plan
from tasks.context import WorkerContext
from tasks.link_store import BeatingLinkStore, DatabaseLinkStore
from tasks.sides import NoProvider, sides_for


@dataclass
class Removal:
    deleted: int = 0
    # Sides calsync can no longer write (a revoked token): their copies stay behind.
    refused: dict[Side, PermanentError] = field(default_factory=dict)


def remove_copies(
    context: WorkerContext, connection: Connection, calendar: ExternalCalendar, sides: set[Side],
    *, forget: bool, final: bool = False, beat: Callable[[], None] = lambda: None,
) -> Removal:  # fmt: skip
    """Delete every copy calsync made on `sides` for this calendar. `forget`: drop the links,
    else keep them as tombstones. `final` (disconnect): drop even the links whose copy a side
    refused to delete; otherwise those stay, to be tried again. A transient failure is raised
    once the rest is done: the task retries, and redoes only what is left."""
    removal = Removal()
    reason = Reason.DISCONNECTED if final else Reason.COPY_WITHDRAWN
    try:
        opened = sides_for(context, connection, calendar)
    except NoProvider as error:
        return Removal(refused=dict.fromkeys(sides, PermanentError(PermanentReason.FORBIDDEN,
                                                                   str(error))))  # fmt: skip
    store = DatabaseLinkStore(context.sessions, connection.id, calendar.id)
    links = BeatingLinkStore(store, beat)
    transient: TransientError | None = None
    try:
        for side in sorted(sides):
            plan = plan_withdrawal(store.all(), side, forget=forget, reason=reason)
            applied = apply_plan(plan, opened.providers, links)
            removal.deleted += sum(isinstance(action, Delete) for action in applied.done)
            failures = [error for _, error in applied.failed]
            transient = transient or next(
                (e for e in failures if isinstance(e, TransientError)), None
            )
            if isinstance(applied.stopped_by, PermanentError):
                removal.refused[side] = applied.stopped_by
                if final:
                    apply_plan(plan_forgetting(store.all(), side, reason), opened.providers, links)
    finally:
        opened.close()
    if transient is not None:
        raise transient
    return removal
