"""Listing one Google calendar for the sync engine: two views of it, one cursor.

calsync needs its own events in series form (an exported recurring session is one master with
exceptions, and must be recognised as such) and everyone else's expanded into occurrences (busy
blocks in Wix are single events). Google lists either series (`singleEvents=false`: masters and
their exceptions) or occurrences (`singleEvents=true`: instances with exceptions applied), never
both in one request. So a listing reads two streams, each with its own sync token:

- the series stream (`singleEvents=false`) supplies the events that carry our marker;
- the occurrence stream (`singleEvents=true`) supplies all the others.

Why not `events.instances` for each foreign master instead: in an incremental listing a deleted
or re-timed master says nothing about the occurrences that vanished with it, while the occurrence
stream lists them as cancelled instances; and a full listing would cost one request per foreign
series. The price of two streams is two list requests per sync instead of one.

Both streams ask with `showDeleted=true`, on full and incremental listings alike: Google wants
the same parameters for both, and deleted entries then keep their details, marker included, so
we can tell whose they are. Full listings drop what is cancelled (except our cancelled
occurrences, which are exceptions of a live series).

Window: the occurrence stream of a full listing asks Google for the `SyncWindow`; the series
stream only for events ending after its start, as calsync's copies are listed however far
ahead they are (a copy moved beyond the window is an edit of the copy, not a deletion), but
not once they are past, with their sessions. Incremental listings cannot bound
(a sync token forbids timeMin/timeMax) and a changed series lists its occurrences up to two
years ahead, so everyone else's occurrences that neither start nor were originally due inside
the window are left out, as a full listing leaves them out; and someone else's event or
occurrence that now lies outside the window is listed as a tombstone, being gone from the
window as a full listing would show it (its Wix block goes; it comes back with the event).

The cursor is both sync tokens as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from providers.base import ChangePage, SyncWindow
from providers.errors import CursorExpired, NotFound
from providers.google.events import (
    Resource,
    expanded_form,
    has_details,
    is_cancelled,
    marker_of,
    original_start,
    series_form,
    series_of,
)
from providers.unreadable import READ_ERRORS
from sync.event import Moment, as_instant
from sync.snapshot import RemoteEvent

PAGE_SIZE = 2500  # the most Google gives per page: fewer requests
SERIES, OCCURRENCES = "series", "occurrences"

# Sends one events.list request with these parameters; returns the decoded page.
ListPage = Callable[[dict[str, Any]], dict[str, Any]]
# The event resource by id (NotFound if Google never had it).
FetchEvent = Callable[[str], Resource]


@dataclass(frozen=True)
class Stream:
    items: list[Resource]
    sync_token: str


class SeriesOwners:
    """Whether a series is ours, for entries that came without details: learnt from the
    masters listed, else asked of Google once per series."""

    def __init__(self, fetch: FetchEvent) -> None:
        self._fetch = fetch
        self._ours: dict[str, bool] = {}

    def learn(self, masters: Iterable[Resource]) -> None:
        for master in masters:
            if series_of(master) is None and marker_of(master) is not None:
                self._ours[str(master["id"])] = True

    def ours(self, resource: Resource) -> bool | None:
        """True/False when known; None for a bare deletion stub of a non-recurring event."""
        if marker_of(resource) is not None:
            return True
        if has_details(resource):
            return False
        parent = series_of(resource)
        return None if parent is None else self._series_is_ours(parent)

    def _series_is_ours(self, series_id: str) -> bool:
        if series_id not in self._ours:
            try:
                self._ours[series_id] = marker_of(self._fetch(series_id)) is not None
            except NotFound:
                self._ours[series_id] = False
        return self._ours[series_id]


class Listing:
    """The two streams of one calendar, read and merged into `ChangePage`s."""

    def __init__(
        self,
        list_page: ListPage,
        fetch: FetchEvent,
        window: SyncWindow,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._list_page = list_page
        self._fetch = fetch
        self.window = window
        self.page_size = page_size

    def full(self, start: datetime | None = None, end: datetime | None = None) -> ChangePage:
        bounds = {
            "timeMin": (start or self.window.start).isoformat(),
            "timeMax": (end or self.window.end).isoformat(),
        }
        series = self._read(False, {"timeMin": bounds["timeMin"]})
        occurrences = self._read(True, bounds)
        owners = SeriesOwners(self._fetch)
        owners.learn(series.items)
        changes = [
            *(expanded_form(r) for r in occurrences.items if _live_foreign(r, owners)),
            *full_series(series.items, owners),
        ]
        return ChangePage(tuple(changes), encode_cursor(series, occurrences), complete=True)

    def changes(self, cursor: str) -> ChangePage:
        tokens = decode_cursor(cursor)
        series = self._read(False, {"syncToken": tokens[SERIES]})
        occurrences = self._read(True, {"syncToken": tokens[OCCURRENCES]})
        owners = SeriesOwners(self._fetch)
        owners.learn(series.items)
        changes = [
            *changed_occurrences(occurrences.items, owners, self.window),
            *changed_series(series.items, owners, self.window),
        ]
        return ChangePage(tuple(changes), encode_cursor(series, occurrences), complete=False)

    def _read(self, single_events: bool, params: dict[str, Any]) -> Stream:
        """Every page of one stream; the sync token comes with the last."""
        query = {
            "singleEvents": single_events,
            "showDeleted": True,
            "maxResults": self.page_size,
            **params,
        }
        items: list[Resource] = []
        page = self._list_page(query)
        items += page.get("items") or []
        while page.get("nextPageToken"):
            page = self._list_page({**query, "pageToken": page["nextPageToken"]})
            items += page.get("items") or []
        return Stream(items, str(page.get("nextSyncToken") or ""))


# -- what each listing keeps -----------------------------------------------------------------


def full_series(items: list[Resource], owners: SeriesOwners) -> list[RemoteEvent]:
    """Our live events in series form; cancelled occurrences of our live series stay."""
    dead = {str(r["id"]) for r in items if is_cancelled(r) and series_of(r) is None}
    kept = []
    for resource in items:
        parent = series_of(resource)
        if parent is None and is_cancelled(resource):
            continue
        if parent in dead or owners.ours(resource) is not True:
            continue
        kept.append(series_form(resource))
    return kept


def changed_series(
    items: list[Resource], owners: SeriesOwners, window: SyncWindow
) -> list[RemoteEvent]:
    """Changes of our events: exceptions of a series deleted here go with it; a single event
    that ended before the window is gone from it, as a full listing leaves it out."""
    dead = {str(r["id"]) for r in items if is_cancelled(r) and series_of(r) is None}
    changes = []
    for resource in items:
        owner = owners.ours(resource)
        if owner is False:
            continue
        change = series_form(resource)
        event = change.event
        past = event is not None and event.recurrence is None and _ended(event.end, window)
        if owner is None or series_of(resource) in dead or past:
            change = RemoteEvent.gone(str(resource["id"]))
        changes.append(change)
    return changes


def changed_occurrences(
    items: list[Resource], owners: SeriesOwners, window: SyncWindow
) -> list[RemoteEvent]:
    """Changes of everyone else's events, occurrence by occurrence, near the window; those
    that lie outside it now are gone from it."""
    changes = []
    for resource in items:
        if owners.ours(resource) is True or not _near_window(resource, window):
            continue
        change = expanded_form(resource)
        event = change.event
        if event is not None and not _overlaps(event.start, event.end, window):
            change = RemoteEvent.gone(change.id)
        changes.append(change)
    return changes


def _live_foreign(resource: Resource, owners: SeriesOwners) -> bool:
    return not is_cancelled(resource) and owners.ours(resource) is False


def _near_window(resource: Resource, window: SyncWindow) -> bool:
    """Non-recurring events always; an occurrence if it was due or now lies in the window."""
    if series_of(resource) is None:
        return True
    try:
        original = original_start(resource)
    except READ_ERRORS:
        return True  # listed, and reported as unreadable

    if original is not None and _inside(original, window):
        return True
    if not has_details(resource) or is_cancelled(resource):
        return False
    event = expanded_form(resource).event
    return event is None or _overlaps(event.start, event.end, window)


def _overlaps(start: Moment, end: Moment, window: SyncWindow) -> bool:
    return as_instant(start) < window.end and as_instant(end) > window.start


def _ended(end: Moment, window: SyncWindow) -> bool:
    return as_instant(end) <= window.start


def _inside(moment: Moment, window: SyncWindow) -> bool:
    return window.start <= as_instant(moment) < window.end


# -- the cursor ------------------------------------------------------------------------------


def encode_cursor(series: Stream, occurrences: Stream) -> str:
    return json.dumps({SERIES: series.sync_token, OCCURRENCES: occurrences.sync_token})


def decode_cursor(cursor: str) -> dict[str, str]:
    """Both sync tokens; a cursor that is not ours counts as expired (list everything)."""
    try:
        tokens = json.loads(cursor)
    except ValueError:
        raise CursorExpired("not a Google cursor") from None
    if not isinstance(tokens, dict) or not all(tokens.get(k) for k in (SERIES, OCCURRENCES)):
        raise CursorExpired("not a Google cursor")
    return {SERIES: str(tokens[SERIES]), OCCURRENCES: str(tokens[OCCURRENCES])}
