"""Whom a connection's schedule belongs to, as Wix says: the owner's Wix user id and name
(`Connection.userId`, List Events' `scheduleOwnerId`, `scheduleOwnerName` and its `userIds`
filter), read from the schedule after connecting and again on each full reconciliation, since a
schedule can change hands. Without a Wix app (the local store stands in for Wix) there is no
owner to read."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from models import Connection
from providers.errors import PermanentError, TransientError
from providers.wix.account import ScheduleOwner, schedule_owner
from tasks.backoff import retry_after_error
from tasks.context import WorkerContext, worker_context
from tasks.enqueue import LEARN_OWNER
from tasks.wix_site import NotAtWix, schedule_at_wix


@shared_task(bind=True, name=LEARN_OWNER, max_retries=None)
def learn_schedule_owner(self: Task, connection_id: str) -> dict[str, Any]:
    context = worker_context()
    try:
        return learn_owner(context, connection_id)
    except TransientError as error:
        delay = retry_after_error(self.request.retries, error, context.settings.max_retry_delay)
        raise self.retry(countdown=delay, exc=error) from None


def learn_owner(context: WorkerContext, connection_id: str) -> dict[str, Any]:
    try:
        site = schedule_at_wix(context, connection_id)
        owner = schedule_owner(site.api, site.schedule_id)
    except NotAtWix as skip:
        return {"skipped": str(skip)}
    except PermanentError as error:  # the schedule gone, the app removed: the sync run says so
        return {"error": error.reason.value}
    _record(context, connection_id, owner)
    return {"userId": owner.user_id}


def _record(context: WorkerContext, connection_id: str, owner: ScheduleOwner) -> None:
    with context.sessions() as db, db.begin():
        connection = db.get(Connection, connection_id, with_for_update=True)
        if connection is not None:
            connection.user_id, connection.schedule_owner_name = owner.user_id, owner.name
