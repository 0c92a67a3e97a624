"""One Wix staff schedule behind `CalendarProvider`: sessions out, calsync's busy blocks in.

Reading is `providers.wix.listing`; this module writes.
- Version = `revision`. Update and cancel send it; Wix's 409 REVISION_MISMATCH is
  `PreconditionFailed`. Cancel is delete: a missing or already cancelled event counts as done.
- Creates are idempotent by lookup: Wix picks event ids, so the create's key is stored in
  calsync's namespace and a retried create finds the event by it instead of making another.
  The per-calendar lock makes calsync the only writer of that key, so lookup-then-create
  cannot race with itself.
- Creating an exception (an occurrence of a series) writes that occurrence: Wix turns the
  INSTANCE into an EXCEPTION that keeps its id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from providers.base import ChangePage, SyncWindow
from providers.errors import (
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    ProviderError,
)
from providers.wix.events import calsync_data, overrides_of
from providers.wix.fields import (
    changed_fields,
    content_fields,
    when_fields,
    with_calsync_data,
    wix_rule,
)
from providers.wix.http import Clock, WixAnswer, WixInstance
from providers.wix.listing import EVENTS_PATH, ScheduleReader, revision_of
from sync.event import CanonicalEvent, EventStatus
from sync.snapshot import RemoteEvent

BULK_CANCEL_PATH = "/calendar/v3/bulk/events/cancel"
BULK_LIMIT = 100
_DONE_ON_CANCEL = ("EVENT_NOT_FOUND", "EVENT_CANCELLED")


class WixSchedule:
    write_concurrency = 1  # one write at a time

    def __init__(
        self,
        api: WixInstance,
        schedule_id: str,
        window: SyncWindow,
        provider_tag: str | None = None,
        *,
        clock: Clock,
        read_only: bool = False,
        page_size: int = 100,
        change_overlap: timedelta = timedelta(seconds=60),
    ) -> None:
        self.api = api
        self.schedule_id = schedule_id
        self.window = window
        self.provider_tag = provider_tag  # the tag of blocks created without an explicit one
        self._read_only = read_only
        self.reader = ScheduleReader(
            api, schedule_id, clock=clock, page_size=page_size, change_overlap=change_overlap
        )

    @property
    def read_only(self) -> bool:
        return self._read_only

    def list_changes(self, cursor: str | None) -> ChangePage:
        return self.reader.changes(cursor, self.window)

    def list_window(self, start: datetime, end: datetime) -> Sequence[RemoteEvent]:
        return self.reader.window(start, end, overrides_of(self.reader.schedule()))

    def get(self, event_id: str) -> RemoteEvent:
        return self.reader.get(event_id)

    def create(
        self, event: CanonicalEvent, idempotency_key: str, *, marker: str, tag: str | None = None
    ) -> RemoteEvent:
        self._writable()
        if event.is_instance:
            return self._write_occurrence(event, marker)
        existing = self.reader.created_with(idempotency_key)
        if existing is not None:
            return self.reader.remote(existing)  # a retry: the first attempt's event
        body: dict[str, Any] = {"scheduleId": self.schedule_id, **content_fields(event),
                                **when_fields(event, None)}  # fmt: skip
        if event.recurrence is not None and event.recurrence.rule:
            body["recurrenceRule"] = wix_rule(
                event.recurrence.rule, event.start, body.get("timeZone"), event.all_day
            )
        data = {"provider": tag or self.provider_tag, "marker": marker,
                "idempotencyKey": idempotency_key}  # fmt: skip
        body["extendedFields"] = with_calsync_data({}, {k: v for k, v in data.items() if v})
        created = self.api.call("POST", EVENTS_PATH, {"event": body})["event"]
        if event.status is EventStatus.CANCELLED:
            cancelled = self._cancel(created["id"], revision_of(created))
            return cancelled or RemoteEvent.gone(created["id"])
        return self.reader.remote(created)

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        self._writable()
        current = self.reader.event(event_id)
        if current.get("status") == "CANCELLED":
            return self._update_cancelled(current, event)
        if if_match is not None and if_match != revision_of(current):
            raise PreconditionFailed(f"wix event {event_id} is at another revision")
        if event.status is EventStatus.CANCELLED:
            cancelled = self._cancel(event_id, revision_of(current))
            return cancelled or RemoteEvent.gone(event_id)
        return self._patch(current, event, {})

    def delete(self, event_id: str, if_match: str | None) -> None:
        self._writable()
        self._cancel(event_id, if_match)

    def delete_many(self, event_ids: Iterable[str]) -> dict[str, ProviderError]:
        """Cancel events with Wix's bulk call (100 per request); answers the failures by id.
        Missing and already cancelled events count as done, as in `delete`."""
        self._writable()
        ids, failures = list(event_ids), {}
        for offset in range(0, len(ids), BULK_LIMIT):
            chunk = ids[offset : offset + BULK_LIMIT]
            answer = self.api.call("POST", BULK_CANCEL_PATH, {"eventIds": chunk})
            for result in answer.get("results", []):
                meta = result.get("itemMetadata") or {}
                error = meta.get("error") or {}
                if meta.get("success") or error.get("code") in _DONE_ON_CANCEL:
                    continue
                item_id = meta.get("id") or chunk[int(meta.get("originalIndex", 0))]
                failures[str(item_id)] = _item_error(error)
        return failures

    # -- internals ----------------------------------------------------------------------

    def _writable(self) -> None:
        if self._read_only:
            raise PermanentError(PermanentReason.FORBIDDEN, "this Wix schedule is read-only")

    def _write_occurrence(self, event: CanonicalEvent, marker: str) -> RemoteEvent:
        assert event.recurrence is not None and event.recurrence.series_id is not None
        series_id = event.recurrence.series_id
        doc = self.reader.occurrence(series_id, event.recurrence.original_start or event.start)
        if doc is None:
            raise NotFound(f"no occurrence of wix series {series_id} starts there")
        if doc.get("status") == "CANCELLED":
            return self._update_cancelled(doc, event)
        if calsync_data(doc).get("marker") == marker and doc["recurrenceType"] == "EXCEPTION":
            return self.reader.remote(doc)  # a retry: the first attempt wrote it
        if event.status is EventStatus.CANCELLED:
            cancelled = self._cancel(str(doc["id"]), revision_of(doc))
            return cancelled or RemoteEvent.gone(str(doc["id"]))
        return self._patch(doc, event, {"marker": marker})

    def _patch(
        self, current: dict[str, Any], event: CanonicalEvent, data: dict[str, str]
    ) -> RemoteEvent:
        """Write only what differs from `current`, at its revision."""
        fields = changed_fields(current, event)
        if data:
            fields["extendedFields"] = with_calsync_data(current, data)
        if not fields:
            return self.reader.remote(current)
        body = {key: value for key, value in fields.items() if value is not None}
        body["revision"] = revision_of(current)
        path = f"{EVENTS_PATH}/{quote(str(current['id']), safe='')}"
        request = {"event": body, "fieldmask": {"paths": sorted(fields)}}
        try:
            return self.reader.remote(self.api.call("PATCH", path, request)["event"])
        except WixAnswer as answer:
            if answer.code == "EVENT_CANCELLED":
                raise NotFound(f"wix event {current['id']} was cancelled") from None
            raise PreconditionFailed(str(answer)) from None

    def _update_cancelled(self, current: dict[str, Any], event: CanonicalEvent) -> RemoteEvent:
        """A cancelled single event or series is gone; a cancelled occurrence stays one (Wix
        cannot restore it)."""
        if not self.reader.is_cancelled_occurrence(current):
            raise NotFound(f"wix event {current['id']} was cancelled")
        if event.status is not EventStatus.CANCELLED:
            raise PermanentError(
                PermanentReason.INVALID_EVENT, "Wix cannot restore a cancelled occurrence"
            )
        return self.reader.remote(current)

    def _cancel(self, event_id: str, revision: str | None) -> RemoteEvent | None:
        """Cancel; the cancelled event as Wix answers it, or None when it was gone already."""
        body = {} if revision is None else {"revision": revision}
        path = f"{EVENTS_PATH}/{quote(event_id, safe='')}/cancel"
        try:
            doc = self.api.call("POST", path, body)["event"]
        except NotFound:
            return None
        except WixAnswer as answer:
            if answer.code == "EVENT_CANCELLED":
                return None
            raise PreconditionFailed(str(answer)) from None
        if self.reader.is_cancelled_occurrence(doc):
            return self.reader.remote(doc)
        return RemoteEvent.gone(event_id, revision_of(doc))


def _item_error(error: dict[str, Any]) -> ProviderError:
    code = str(error.get("code", ""))
    text = f"wix bulk item {code}: {error.get('description', '')}"
    if code == "REVISION_MISMATCH":
        return PreconditionFailed(text)
    return PermanentError(PermanentReason.INVALID_EVENT, text)
