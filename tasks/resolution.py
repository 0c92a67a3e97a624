"""Keeping the losing side of a conflict: an operator chose the value the policy overruled.

After the run that decided it, both sides hold the winner's value and the link's base (the
agreed state) holds it too. Putting the loser's value into the base, under the calendar's lock
so no run saves an older link over it, makes the origin owe that value (`owed_fields`): the
next run merges it as the other side's edit and writes it to both sides with the usual
idempotent, If-Match writes. That run is requested right away.

A conflict whose field changed again since, or whose pair is gone, is superseded: writing
the old value would undo a newer edit. Deletion conflicts are only acknowledged (the API
refuses to keep their other side).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from celery import Task, shared_task

from models import Conflict, ConflictStatus
from models import Link as LinkRow
from models import Side as RowSide
from sync.codec import value_from_json
from sync.event import Field, same_value, value_of, with_value
from sync.link import Link
from tasks.backoff import retry_after_error
from tasks.context import WorkerContext, worker_context
from tasks.coordination import CalendarBusy
from tasks.enqueue import RESOLVE_CONFLICT, request_sync
from tasks.link_store import fill_row, to_link


@shared_task(bind=True, name=RESOLVE_CONFLICT, max_retries=None)
def resolve_conflict(self: Task, conflict_id: str) -> dict[str, Any]:
    context = worker_context()
    try:
        return {"status": keep_losing_value(context, conflict_id).value}
    except CalendarBusy as error:
        delay = retry_after_error(self.request.retries, error, context.settings.max_retry_delay)
        raise self.retry(countdown=delay, exc=error) from None


def keep_losing_value(context: WorkerContext, conflict_id: str) -> ConflictStatus:
    """Make the conflict's losing value the agreed one and ask for the run that writes it;
    `CalendarBusy` while a run holds the calendar."""
    calendar_id = _calendar_of(context, conflict_id)
    if calendar_id is None:
        return _supersede_unless_done(context, conflict_id)
    with context.gate.held(calendar_id):
        status = _rebase(context, conflict_id)
    if status is ConflictStatus.RESOLVED:
        request_sync(context.gate, calendar_id, "resolve")
    return status


def _calendar_of(context: WorkerContext, conflict_id: str) -> str | None:
    with context.sessions() as db:
        conflict = db.get(Conflict, conflict_id)
        link = None if conflict is None or conflict.link_id is None else (
            db.get(LinkRow, conflict.link_id))  # fmt: skip
        return None if link is None else link.calendar_id


def _supersede_unless_done(context: WorkerContext, conflict_id: str) -> ConflictStatus:
    with context.sessions() as db, db.begin():
        conflict = db.get(Conflict, conflict_id, with_for_update=True)
        if conflict is None:
            return ConflictStatus.SUPERSEDED
        if conflict.status is ConflictStatus.RESOLVING:
            conflict.status = ConflictStatus.SUPERSEDED
        return conflict.status


def _rebase(context: WorkerContext, conflict_id: str) -> ConflictStatus:
    with context.sessions() as db, db.begin():
        conflict = db.get(Conflict, conflict_id, with_for_update=True)
        if conflict is None or conflict.status is not ConflictStatus.RESOLVING:
            return ConflictStatus.SUPERSEDED if conflict is None else conflict.status
        row = None if conflict.link_id is None else db.get(LinkRow, conflict.link_id,
                                                            with_for_update=True)  # fmt: skip
        agreed = None if row is None else losing_value_agreed(to_link(row), conflict)
        if row is None or agreed is None:
            conflict.status = ConflictStatus.SUPERSEDED
        else:
            fill_row(row, agreed)
            conflict.status = ConflictStatus.RESOLVED
        return conflict.status


def losing_value_agreed(link: Link, conflict: Conflict) -> Link | None:
    """The link with the loser's value as the agreed one, or None when the agreed value is no
    longer the winner's (or the conflict is not about one field)."""
    try:
        field = Field(conflict.field)
        won, lost = (conflict.wix_value, conflict.external_value)
        if conflict.winner is RowSide.EXTERNAL:
            won, lost = lost, won
        winning, losing = value_from_json(field, won), value_from_json(field, lost)
    except ValueError:
        return None
    if not same_value(value_of(link.base, field), winning):
        return None
    return replace(link, base=with_value(link.base, field, losing))
