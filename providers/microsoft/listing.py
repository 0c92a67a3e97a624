"""Reading a calendar: `calendarView/delta` rounds, calsync's own events, and series form.

A delta round lists instances (single events, occurrences, exceptions) without extended
properties (delta forbids `$expand`), so which events are calsync's comes from one more listing,
`/events` filtered on calsync's origin property. Then:

- a single event is listed as it is, with its marker if it is ours; calsync's own single
  events are listed however far ahead they are, the delta round lists only the window (moving
  a copy beyond the window is an edit of it, not a deletion), but not once they are past;
- an occurrence or exception of a *foreign* series is listed expanded: a standalone event with
  Graph's own instance id (derived by Graph from the series and the original start, stable, and
  the id `@removed` names when the occurrence goes);
- calsync's own series are listed in series form: the master with its RRULE, each exception
  (`{series id}!{original start}`), and each cancelled occurrence as a CANCELLED exception: the
  starts the rule gives in the window that no instance has any more.

The cursor is the delta link plus the ids of calsync's series seen, so an incremental round can
report a deleted series (Graph reports only its occurrences, under ids no link knows).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from providers.base import SyncWindow
from providers.errors import CursorExpired, NotFound
from providers.microsoft.events import (
    EXPAND_PROPS,
    OURS_FILTER,
    PREFER_TEXT,
    exception_id,
    marker_of,
    modified_of,
    original_start,
    read_event,
    read_rule,
    same_moment,
    series_start,
    stored_shape,
    version_of,
)
from providers.microsoft.http import GraphClient
from providers.microsoft.recurrence import occurrence_starts
from providers.microsoft.timezones import PREFER_UTC, utc_text
from providers.unreadable import READ_ERRORS, read_or_unreadable, unreadable_item
from sync.event import CanonicalEvent, EventStatus, Moment, Recurrence, as_instant
from sync.snapshot import RemoteEvent

READ_PREFER = f"{PREFER_UTC}, {PREFER_TEXT}"
CANCELLED_VERSION = "cancelled"  # a cancelled occurrence has no item, so no etag, in Graph
_INSTANCE_TYPES = ("occurrence", "exception")


@dataclass(frozen=True)
class Cursor:
    delta_link: str
    series: tuple[str, ...] = ()

    def encode(self) -> str:
        return json.dumps({"delta": self.delta_link, "series": list(self.series)})

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            data = json.loads(text)
            return cls(str(data["delta"]), tuple(str(s) for s in data.get("series") or ()))
        except (ValueError, KeyError, TypeError):
            raise CursorExpired("not a Microsoft cursor") from None


@dataclass
class DeltaRound:
    items: list[dict[str, Any]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    delta_link: str = ""


class CalendarReader:
    """The read side of one calendar over a sync window."""

    def __init__(
        self,
        client: GraphClient,
        calendar_url: str,
        delta_url: str,
        window: SyncWindow,
        page_size: int,
    ) -> None:
        self.client = client
        self.calendar_url = calendar_url
        self.delta_url = delta_url
        self.window = window
        self.page_size = page_size
        self.headers = {"Prefer": READ_PREFER}

    # -- Graph reads ----------------------------------------------------------------------

    def delta(self, link: str | None) -> DeltaRound:
        """One whole round: the first (over the window) when `link` is None."""
        headers = {"Prefer": f"{READ_PREFER}, odata.maxpagesize={self.page_size}"}
        params = None if link else _window_params(self.window.start, self.window.end)
        page = self.client.get_json(link or self.delta_url, params, headers)
        found = DeltaRound()
        while True:
            for item in page.get("value") or []:
                whole = None if "@removed" in item else self._whole(item)
                if whole is None:
                    found.removed.append(str(item["id"]))
                else:
                    found.items.append(whole)
            if page.get("@odata.deltaLink"):
                found.delta_link = str(page["@odata.deltaLink"])
                return found
            next_link = page.get("@odata.nextLink")
            if not next_link:
                raise CursorExpired("a delta page with neither nextLink nor deltaLink")
            page = self.client.get_json(str(next_link), headers=headers)

    def _whole(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """Delta may send only the changed properties of an item; then read it all."""
        if all(key in item for key in ("type", "start", "end")):
            return item
        url = self.client.me(f"/events/{quote(str(item['id']), safe='')}")
        try:
            return self.client.get_json(url, headers=self.headers)
        except NotFound:
            return None

    def ours(self) -> dict[str, dict[str, Any]]:
        """calsync's single events and series masters in this calendar, with their properties."""
        params = {"$filter": OURS_FILTER, "$expand": EXPAND_PROPS, "$top": str(self.page_size)}
        events = self.client.pages(f"{self.calendar_url}/events", params, self.headers)
        return {str(raw["id"]): raw for raw in events}

    def instances(self, master_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        url = self.client.me(f"/events/{quote(master_id, safe='')}/instances")
        params = {
            **_window_params(start, end),
            "$expand": EXPAND_PROPS,
            "$top": str(self.page_size),
        }
        return list(self.client.pages(url, params, self.headers))

    def view(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        params = {**_window_params(start, end), "$top": str(self.page_size)}
        return list(self.client.pages(f"{self.calendar_url}/calendarView", params, self.headers))

    # -- listings -------------------------------------------------------------------------

    def full(
        self, items: Iterable[dict[str, Any]], ours: dict[str, dict[str, Any]]
    ) -> tuple[list[RemoteEvent], tuple[str, ...]]:
        """Everything in the window, and the ids of calsync's series listed."""
        listed: list[RemoteEvent] = []
        for raw in items:
            kind = raw.get("type")
            if kind == "singleInstance":
                listed.append(single(raw, ours.get(str(raw["id"]))))
            elif kind in _INSTANCE_TYPES and str(raw.get("seriesMasterId")) not in ours:
                listed.append(expanded(raw))
            elif kind is None:
                listed.append(untyped(raw))
        seen = {item.id for item in listed}
        listed += [
            own for raw_id, raw in ours.items()
            if raw_id not in seen and (own := self.own_single(raw)) is not None
        ]  # fmt: skip
        masters = [m for m in ours.values() if m.get("type") == "seriesMaster"]
        series_ids: list[str] = []
        for master in masters:
            form = self.series_form(master)
            if form:
                listed += form
                series_ids.append(str(master["id"]))
        return listed, tuple(series_ids)

    def changes(
        self, round_: DeltaRound, ours: dict[str, dict[str, Any]], seen: tuple[str, ...]
    ) -> tuple[list[RemoteEvent], tuple[str, ...]]:
        """What one incremental round changed, and the ids of calsync's series listed."""
        changed: list[RemoteEvent] = []
        refresh: set[str] = set()
        for raw in round_.items:
            kind, raw_id = raw.get("type"), str(raw["id"])
            master_id = str(raw.get("seriesMasterId") or "")
            if kind == "singleInstance":
                changed.append(single(raw, ours.get(raw_id)))
            elif kind in _INSTANCE_TYPES and master_id in ours:
                refresh.add(master_id)
            elif kind in _INSTANCE_TYPES:
                changed.append(expanded(raw))
            elif kind == "seriesMaster" and raw_id in ours:
                refresh.add(raw_id)
            elif kind is None:
                changed.append(untyped(raw))
        for removed_id in round_.removed:
            still = ours.get(removed_id)
            if still is None:
                changed.append(RemoteEvent.gone(removed_id))
            elif still.get("type") == "singleInstance":
                changed.append(self.own_single(still) or RemoteEvent.gone(removed_id))
        masters = {i for i, raw in ours.items() if raw.get("type") == "seriesMaster"}
        if round_.removed:
            refresh |= masters  # a removed occurrence id may be a cancelled one of ours
        listed = [i for i in seen if i in masters and i not in refresh]
        for master_id in sorted(refresh & masters):
            form = self.series_form(ours[master_id])
            changed += form
            if form:
                listed.append(master_id)
        changed += [RemoteEvent.gone(i) for i in seen if i not in masters]
        return changed, tuple(listed)

    def own_single(self, raw: dict[str, Any]) -> RemoteEvent | None:
        """One of calsync's single events outside the window: listed however far ahead it is
        (moving a copy beyond the window edits it), gone once it ended before the window
        (with its session). None for a series master."""
        if raw.get("type") != "singleInstance":
            return None
        own = single(raw, raw)
        event = own.event
        if event is not None and as_instant(event.end) <= self.window.start:
            return None
        return own

    def series_form(self, master: dict[str, Any]) -> list[RemoteEvent]:
        """calsync's series in the window: master, exceptions, cancelled occurrences ([] if
        the series has no occurrence in the window); the master alone, unreadable, when a
        part of it cannot be read."""
        try:
            return self._series_form(master)
        except READ_ERRORS as error:
            return [unreadable_item(str(master["id"]), version_of(master), error)]

    def _series_form(self, master: dict[str, Any]) -> list[RemoteEvent]:
        shape, marker, master_id = stored_shape(master), marker_of(master), str(master["id"])
        series = series_start(master)
        head = read_event(master, shape, Recurrence(rule=read_rule(master, shape)))
        length = as_instant(head.end) - as_instant(head.start)
        assert head.recurrence is not None and head.recurrence.rule is not None
        lo, hi = self.window.start, self.window.end
        expected = occurrence_starts(head.recurrence.rule, series, lo - length, hi)
        if not expected:
            return []
        form = [RemoteEvent(master_id, version_of(master), head, modified_of(master), marker)]
        try:
            instances = self.instances(master_id, lo, hi)
        except NotFound:
            return []  # deleted since it was listed: the next round reports it
        seen: list[Moment] = []
        for raw in instances:
            original = original_start(raw, series)
            seen.append(original)
            if raw.get("type") == "exception":
                rec = Recurrence(series_id=master_id, original_start=original)
                event = read_event(raw, shape, rec)
                own_id, own_marker = exception_id(master_id, original), marker_of(raw) or marker
                form.append(
                    RemoteEvent(own_id, version_of(raw), event, modified_of(raw), own_marker)
                )
        for start in expected:
            if not any(same_moment(start, s) for s in seen):
                form.append(cancelled(master, head, start, length, marker))
        return form


def single(raw: dict[str, Any], ours: dict[str, Any] | None) -> RemoteEvent:
    """A single event; `ours` is its copy from the listing of calsync's events (properties)."""
    shape = stored_shape(ours) if ours else None
    marker = marker_of(ours) if ours else None
    return read_or_unreadable(str(raw["id"]), version_of(raw), lambda: RemoteEvent(
        str(raw["id"]), version_of(raw), read_event(raw, shape), modified_of(raw), marker
    ))  # fmt: skip


def expanded(raw: dict[str, Any]) -> RemoteEvent:
    """One occurrence of a foreign series as a standalone event."""
    return read_or_unreadable(str(raw["id"]), version_of(raw), lambda: RemoteEvent(
        str(raw["id"]), version_of(raw), read_event(raw, None), modified_of(raw)
    ))  # fmt: skip


def untyped(raw: dict[str, Any]) -> RemoteEvent:
    """An item listed without its type: neither a single event nor an occurrence we can tell."""
    return unreadable_item(str(raw["id"]), version_of(raw), KeyError("type"))


def cancelled(
    master: dict[str, Any],
    head: CanonicalEvent,
    original: Moment,
    length: timedelta,
    marker: str | None,
) -> RemoteEvent:
    """A cancelled occurrence of calsync's series, as a CANCELLED exception."""
    master_id = str(master["id"])
    if isinstance(original, datetime):
        start: Moment = original.astimezone(UTC)
        end: Moment = start + length
    else:
        start, end = original, original + timedelta(days=max(1, length.days))
    event = replace(
        head,
        start=start,
        end=end,
        status=EventStatus.CANCELLED,
        recurrence=Recurrence(series_id=master_id, original_start=start),
    )
    return RemoteEvent(
        exception_id(master_id, start), CANCELLED_VERSION, event, modified_of(master), marker
    )


def _window_params(start: datetime, end: datetime) -> dict[str, str]:
    return {"startDateTime": utc_text(start), "endDateTime": utc_text(end)}
