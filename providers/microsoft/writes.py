"""Writing one calendar's events: creates with `transactionId`, conditional updates and deletes,
and exceptions of series (a Graph occurrence found by its original start).

Graph ids cannot be chosen, so a create's idempotency rides on `transactionId` (derived from the
idempotency key): Graph answers a repeated POST with the event the first one made. Updates and
deletes send `If-Match` with the version (etag) calsync last saw; 412 -> `PreconditionFailed`.
A series master is patched only in the fields that changed: Graph drops a series' exceptions
when its pattern or times are written, even unchanged.

A create, update or delete of a single event or master is an exchange (`creating`, `updating`,
`deleting`; see `providers.microsoft.batch`): `create`, `update` and `delete` send it alone, and
`MicrosoftCalendar.write_many` sends it with others in `$batch` requests, the same calls either
way.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from providers.base import RemoteEvent
from providers.errors import (
    AlreadyExists,
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
)
from providers.microsoft.batch import Exchange, run_alone
from providers.microsoft.events import (
    EXPAND_PROPS,
    MARKER_PROP,
    SHAPE_PROP,
    Shape,
    exception_id,
    marker_of,
    modified_of,
    original_start,
    read_event,
    read_rule,
    same_moment,
    series_start,
    series_start_of,
    shape_of,
    stored_shape,
    tags,
    version_of,
    write_fields,
)
from providers.microsoft.http import GraphCall, GraphClient
from providers.microsoft.listing import CANCELLED_VERSION, READ_PREFER, CalendarReader, cancelled
from providers.microsoft.recurrence import UnsupportedRule, occurrence_starts, same_pattern
from sync.event import CanonicalEvent, EventStatus, Moment, Recurrence, as_instant

_TIME_FIELDS = ("start", "end", "isAllDay", "recurrence")


def transaction_id(idempotency_key: str) -> str:
    return "calsync-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]


def if_match_header(if_match: str | None) -> dict[str, str]:
    """Graph etags are quoted (`W/"..."`); anything else (a cancelled occurrence) has none."""
    if not if_match or not if_match.removeprefix("W/").startswith('"'):
        return {}
    return {"If-Match": if_match}


class CalendarWriter:
    def __init__(self, client: GraphClient, calendar_url: str, reader: CalendarReader) -> None:
        self.client = client
        self.calendar_url = calendar_url
        self.reader = reader
        self.headers = {"Prefer": READ_PREFER}

    def event_url(self, event_id: str) -> str:
        return self.client.me(f"/events/{quote(event_id, safe='')}")

    def fetch(self, event_id: str) -> dict[str, Any]:
        """The event with calsync's properties; NotFound when Graph has no such item."""
        return self.client.call(self._fetch_call(event_id))

    def _fetch_call(self, event_id: str) -> GraphCall:
        return GraphCall(
            "GET", self.event_url(event_id), {"$expand": EXPAND_PROPS}, headers=self.headers
        )

    # -- single events and series masters -------------------------------------------------------

    def create(self, event: CanonicalEvent, idempotency_key: str, marker: str) -> RemoteEvent:
        return run_alone(self.client, self.creating(event, idempotency_key, marker))

    def creating(self, event: CanonicalEvent, idempotency_key: str, marker: str
                 ) -> Exchange[RemoteEvent]:  # fmt: skip
        shape = shape_of(event)
        body = {
            **_fields(event),
            "transactionId": transaction_id(idempotency_key),
            "singleValueExtendedProperties": tags(marker, shape),
        }
        try:
            raw = yield self._write_call("POST", f"{self.calendar_url}/events", body)
        except NotFound:
            raise PermanentError(PermanentReason.CALENDAR_DELETED, "the calendar is gone") from None
        except PreconditionFailed:  # a 409: the transactionId is taken, by the first attempt
            return self.made_before(marker)
        # The answer carries no extended properties; a transactionId retry's event has ours.
        return stored_remote(raw, shape, marker)

    def made_before(self, marker: str) -> RemoteEvent:
        """The event an earlier create made, found by its marker."""
        quoted = marker.replace("'", "''")
        wanted = (
            "singleValueExtendedProperties/Any("
            f"ep: ep/id eq '{MARKER_PROP}' and ep/value eq '{quoted}')"
        )
        params = {"$filter": wanted, "$expand": EXPAND_PROPS}
        for raw in self.client.pages(f"{self.calendar_url}/events", params, self.headers):
            return stored_remote(raw, stored_shape(raw), marker_of(raw))
        raise AlreadyExists("the transactionId is taken but no event carries the marker")

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        return run_alone(self.client, self.updating(event_id, event, if_match))

    def updating(self, event_id: str, event: CanonicalEvent, if_match: str | None
                 ) -> Exchange[RemoteEvent]:  # fmt: skip
        current = yield self._fetch_call(event_id)
        if if_match_header(if_match) and version_of(current) != if_match:
            raise PreconditionFailed(f"{event_id} changed since {if_match}")
        body = _fields(event)
        if current.get("type") == "seriesMaster" and not _reshaped(current, event):
            body = {k: v for k, v in body.items() if k not in _TIME_FIELDS}
        marker = marker_of(current)
        written = shape_of(event) if marker else None  # only calsync's events carry a shape
        if written is not None:
            body["singleValueExtendedProperties"] = [{"id": SHAPE_PROP, "value": written.encode()}]
        raw = yield self._write_call("PATCH", self.event_url(event_id), body, if_match)
        return stored_remote(raw, written or stored_shape(current), marker)

    def delete(self, event_id: str, if_match: str | None) -> None:
        run_alone(self.client, self.deleting(event_id, if_match))

    def deleting(self, event_id: str, if_match: str | None) -> Exchange[None]:
        try:
            yield GraphCall("DELETE", self.event_url(event_id), headers=if_match_header(if_match))
        except NotFound:
            return  # already gone: done

    # -- exceptions of series ---------------------------------------------------------------------

    def write_exception(
        self, event: CanonicalEvent, if_match: str | None, marker: str | None
    ) -> RemoteEvent:
        rec = event.recurrence
        assert rec is not None and rec.series_id is not None and rec.original_start is not None
        master = self.fetch(rec.series_id)  # NotFound: no such series
        instance = self.find_occurrence(master, rec.original_start)
        synthetic = exception_id(rec.series_id, _original(rec.original_start))
        if event.status is EventStatus.CANCELLED:
            if instance is not None:
                self.delete(str(instance["id"]), if_match)
            kept = _marker(marker, instance or {}, master)
            return RemoteEvent(synthetic, CANCELLED_VERSION, event, None, kept)
        if instance is None:
            raise NotFound(f"{synthetic}: the occurrence is cancelled or not in the series")
        body = _fields(event)
        if marker:
            body["singleValueExtendedProperties"] = [{"id": MARKER_PROP, "value": marker}]
        call = self._write_call("PATCH", self.event_url(str(instance["id"])), body, if_match)
        raw = self.client.call(call)
        read = read_event(raw, Shape(event.time_zone), rec)
        return RemoteEvent(
            synthetic, version_of(raw), read, modified_of(raw), _marker(marker, instance, master)
        )

    def exception(self, series_id: str, original: Moment) -> RemoteEvent:
        """An exception of calsync's series by original start; gone if there is none."""
        synthetic = exception_id(series_id, original)
        try:
            master = self.fetch(series_id)
        except NotFound:
            return RemoteEvent.gone(synthetic)
        shape, marker = stored_shape(master), marker_of(master)
        head = read_event(master, shape, Recurrence(rule=read_rule(master, shape)))
        instance = self.find_occurrence(master, original)
        if instance is not None:
            found = original_start(instance, series_start(master))
            rec = Recurrence(series_id=series_id, original_start=found)
            event = read_event(instance, shape, rec)
            own_marker = marker_of(instance) or marker
            return RemoteEvent(
                synthetic, version_of(instance), event, modified_of(instance), own_marker
            )
        if not _in_pattern(head, master, original):
            return RemoteEvent.gone(synthetic)
        length = as_instant(head.end) - as_instant(head.start)
        return cancelled(master, head, original, length, marker)

    def delete_exception(self, series_id: str, original: Moment, if_match: str | None) -> None:
        try:
            master = self.fetch(series_id)
        except NotFound:
            return
        instance = self.find_occurrence(master, original)
        if instance is not None:
            self.delete(str(instance["id"]), if_match)

    def find_occurrence(self, master: dict[str, Any], original: Moment) -> dict[str, Any] | None:
        """The occurrence or exception of `master` originally at `original`: looked for near its
        original time, then (moved far) over the sync window."""
        series = series_start(master)
        start = _as_utc(original)
        spans = [
            (start - timedelta(days=1), start + timedelta(days=2)),
            (self.reader.window.start, self.reader.window.end),
        ]
        for lo, hi in spans:
            for raw in self.reader.instances(str(master["id"]), lo, hi):
                if same_moment(original_start(raw, series), original):
                    return raw
        return None

    def _write_call(self, method: str, url: str, body: dict[str, Any], if_match: str | None = None
                    ) -> GraphCall:  # fmt: skip
        headers = {**self.headers, **if_match_header(if_match)}
        return GraphCall(method, url, body=body, headers=headers)


def _marker(written: str | None, instance: dict[str, Any], master: dict[str, Any]) -> str | None:
    """The exception's own marker (written now, or earlier), else the one its series passes on."""
    return written or marker_of(instance) or marker_of(master)


def _fields(event: CanonicalEvent) -> dict[str, Any]:
    try:
        return write_fields(event)
    except UnsupportedRule as error:
        raise PermanentError(PermanentReason.INVALID_EVENT, str(error)) from None


def stored_remote(raw: dict[str, Any], shape: Shape | None, marker: str | None) -> RemoteEvent:
    rec = None
    if raw.get("type") == "seriesMaster":
        rec = Recurrence(rule=read_rule(raw, shape))
    event = read_event(raw, shape, rec)
    return RemoteEvent(str(raw["id"]), version_of(raw), event, modified_of(raw), marker)


def _reshaped(current: dict[str, Any], event: CanonicalEvent) -> bool:
    """Whether a master's times or pattern differ from what `event` wants."""
    now = read_event(current, stored_shape(current))
    if (now.start, now.end, now.all_day) != (event.start, event.end, event.all_day):
        return True
    rule = event.recurrence.rule if event.recurrence else None
    if not rule or not current.get("recurrence"):
        return True
    return not same_pattern(rule, current["recurrence"], series_start_of(event))


def _in_pattern(head: CanonicalEvent, master: dict[str, Any], original: Moment) -> bool:
    assert head.recurrence is not None and head.recurrence.rule is not None
    start = _as_utc(original)
    found = occurrence_starts(
        head.recurrence.rule,
        series_start(master),
        start - timedelta(hours=1),
        start + timedelta(days=1),
    )
    return any(same_moment(f, original) for f in found)


def _original(moment: Moment) -> Moment:
    return moment.astimezone(UTC) if isinstance(moment, datetime) else moment


def _as_utc(moment: Moment) -> datetime:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC)
    assert isinstance(moment, date)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
