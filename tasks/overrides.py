"""Setting `externalCalendarOverrides` on a connection's Wix schedule, or on one of its
sessions, as the API asked (`PUT .../schedules/{id}/external-calendar-overrides`): written to
Wix (`providers.wix.overrides`), then the calendar receiving the sessions syncs, so their copies
take the new title and description (a schedule sends no webhook; the incremental run re-reads
every session when the schedule's revision moved)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from providers.errors import NotFound, PermanentError, TransientError
from providers.wix.overrides import set_schedule_overrides, set_session_overrides
from sync.event import ExternalCalendarOverrides
from tasks.backoff import retry_after_error
from tasks.context import WorkerContext, worker_context
from tasks.enqueue import SET_OVERRIDES, request_syncs
from tasks.wix_site import NotAtWix, schedule_at_wix


@shared_task(bind=True, name=SET_OVERRIDES, max_retries=None)
def set_overrides(self: Task, connection_id: str, session_id: str | None,
                  overrides: dict[str, str | None]) -> dict[str, Any]:  # fmt: skip
    context = worker_context()
    wanted = ExternalCalendarOverrides(overrides.get("title"), overrides.get("description"))
    try:
        return write_overrides(context, connection_id, session_id, wanted)
    except TransientError as error:
        delay = retry_after_error(self.request.retries, error, context.settings.max_retry_delay)
        raise self.retry(countdown=delay, exc=error) from None


def write_overrides(context: WorkerContext, connection_id: str, session_id: str | None,
                    overrides: ExternalCalendarOverrides) -> dict[str, Any]:  # fmt: skip
    try:
        site = schedule_at_wix(context, connection_id)
        if session_id is None:
            set_schedule_overrides(site.api, site.schedule_id, overrides)
        else:
            set_session_overrides(site.api, site.schedule_id, session_id, overrides)
    except NotAtWix as skip:
        return {"skipped": str(skip)}
    except NotFound:
        return {"error": "SESSION_NOT_FOUND"}
    except PermanentError as error:
        return {"error": error.reason.value}
    request_syncs(context.gate, site.exporting, "overrides")
    return {"written": True, "synced": site.exporting}
