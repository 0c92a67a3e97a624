"""Graph event JSON <-> calsync's `CanonicalEvent`, calsync's extended properties, exception ids.

Events calsync creates carry three single-value extended properties under one GUID: the marker
(read back verbatim), a fixed origin value (so one documented `$filter` finds them), and the
"shape" calsync wrote (IANA zone and RRULE text), because Graph keeps only their Graph forms
(a Windows zone name, a recurrence pattern). When Graph's current form still matches the shape,
the shape's exact text is read back; when someone changed it in Outlook, Graph's form wins.

Exceptions of calsync's own series are identified as `{series id}!{original start}` (UTC instant,
or the date of an all-day series), so an occurrence keeps one id whether it is moved, cancelled
(Graph then forgets it) or moved again.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from providers.microsoft.recurrence import SeriesStart, from_graph, same_pattern, to_graph
from providers.microsoft.timezones import (
    graph_time,
    iana_name,
    parse_instant,
    read_time,
    windows_name,
    zone_info,
)
from sync.event import CanonicalEvent, EventStatus, Moment, Recurrence, Transparency

_GUID = "{6b0d3c2e-8f41-4a7e-9c55-2f1e0a9d7b13}"
MARKER_PROP = f"String {_GUID} Name calsyncMarker"
ORIGIN_PROP = f"String {_GUID} Name calsyncOrigin"
SHAPE_PROP = f"String {_GUID} Name calsyncShape"
ORIGIN = "calsync"
EXPAND_PROPS = (
    f"singleValueExtendedProperties($filter=id eq '{MARKER_PROP}' or id eq '{SHAPE_PROP}')"
)
OURS_FILTER = (
    f"singleValueExtendedProperties/Any(ep: ep/id eq '{ORIGIN_PROP}' and ep/value eq '{ORIGIN}')"
)
PREFER_TEXT = 'outlook.body-content-type="text"'
SEPARATOR = "!"  # never part of a Graph id (base64 text)
_TAGS = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Shape:
    """The zone and rule text calsync wrote; Graph keeps only its own forms of them."""

    time_zone: str | None = None
    rule: str | None = None

    def encode(self) -> str:
        return json.dumps({"tz": self.time_zone, "rule": self.rule}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | None) -> Shape | None:
        try:
            data = json.loads(text or "")
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        return cls(_text_or_none(data.get("tz")), _text_or_none(data.get("rule")))


def shape_of(event: CanonicalEvent) -> Shape:
    return Shape(event.time_zone, event.recurrence.rule if event.recurrence else None)


def properties(raw: dict[str, Any]) -> dict[str, str]:
    found = raw.get("singleValueExtendedProperties") or []
    return {str(p.get("id")): str(p.get("value")) for p in found if isinstance(p, dict)}


def marker_of(raw: dict[str, Any]) -> str | None:
    return properties(raw).get(MARKER_PROP)


def stored_shape(raw: dict[str, Any]) -> Shape | None:
    return Shape.decode(properties(raw).get(SHAPE_PROP))


def tags(marker: str, shape: Shape) -> list[dict[str, str]]:
    return [
        {"id": MARKER_PROP, "value": marker},
        {"id": ORIGIN_PROP, "value": ORIGIN},
        {"id": SHAPE_PROP, "value": shape.encode()},
    ]


# -- writing -------------------------------------------------------------------------------------


def write_fields(event: CanonicalEvent) -> dict[str, Any]:
    """The event's fields as a Graph body (POST, or a full-state PATCH)."""
    zone = event.time_zone
    body: dict[str, Any] = {
        "subject": event.title,
        "body": {"contentType": "text", "content": event.description},
        "location": {"displayName": event.location},
        "start": graph_time(event.start, zone, event.all_day),
        "end": graph_time(event.end, zone, event.all_day),
        "isAllDay": event.all_day,
        "showAs": "free" if event.transparency is Transparency.FREE else "busy",
    }
    rule = event.recurrence.rule if event.recurrence else None
    if rule and not event.is_instance:
        body["recurrence"] = to_graph(rule, series_start_of(event))
    return body


def series_start_of(event: CanonicalEvent) -> SeriesStart:
    zone = windows_name(event.time_zone) or "UTC"
    if event.all_day or not isinstance(event.start, datetime):
        day = event.start.date() if isinstance(event.start, datetime) else event.start
        return SeriesStart(day, zone)
    return SeriesStart(event.start.astimezone(zone_info(zone) or UTC), zone)


# -- reading -------------------------------------------------------------------------------------


def graph_zone(raw: dict[str, Any]) -> str | None:
    """The zone the event was written in, as Graph names it."""
    rec_zone = ((raw.get("recurrence") or {}).get("range") or {}).get("recurrenceTimeZone")
    start = raw.get("start")
    start_zone = start.get("timeZone") if isinstance(start, dict) else None
    return raw.get("originalStartTimeZone") or rec_zone or start_zone


def read_zone(raw: dict[str, Any], shape: Shape | None) -> str | None:
    reported = graph_zone(raw)
    if shape is not None and reported in (shape.time_zone, windows_name(shape.time_zone) or "UTC"):
        return shape.time_zone
    return iana_name(reported)


def read_event(
    raw: dict[str, Any],
    shape: Shape | None,
    recurrence: Recurrence | None = None,
    status: EventStatus | None = None,
) -> CanonicalEvent:
    """A Graph event (read in UTC, body as text) as a CanonicalEvent."""
    all_day = bool(raw.get("isAllDay"))
    own = graph_zone(raw)
    cancelled = bool(raw.get("isCancelled"))
    return CanonicalEvent(
        title=str(raw.get("subject") or ""),
        description=_body_text(raw.get("body")),
        location=str((raw.get("location") or {}).get("displayName") or ""),
        start=read_time(raw["start"], all_day, own),
        end=read_time(raw["end"], all_day, own),
        all_day=all_day,
        time_zone=read_zone(raw, shape),
        status=status or (EventStatus.CANCELLED if cancelled else EventStatus.CONFIRMED),
        transparency=Transparency.FREE if raw.get("showAs") == "free" else Transparency.BUSY,
        recurrence=recurrence,
        declined=declined_by_owner(raw),
    )


def declined_by_owner(raw: dict[str, Any]) -> bool:
    """The mailbox owner's answer to the invitation (`responseStatus`) is "declined"; the
    organizer's own events say "organizer", tentative ones "tentativelyAccepted"."""
    answer = raw.get("responseStatus")
    return isinstance(answer, dict) and answer.get("response") == "declined"


def series_start(raw: dict[str, Any]) -> SeriesStart:
    """Where a series master starts, in its recurrence zone."""
    zone = graph_zone(raw) or "UTC"
    start = read_time(raw["start"], bool(raw.get("isAllDay")), zone)
    if isinstance(start, datetime):
        return SeriesStart(start.astimezone(zone_info(zone) or UTC), zone)
    return SeriesStart(start, zone)


def read_rule(raw: dict[str, Any], shape: Shape | None) -> str:
    """The master's RRULE: the text calsync wrote while Graph's pattern still matches it."""
    series = series_start(raw)
    recurrence = raw["recurrence"]
    if shape is not None and shape.rule and same_pattern(shape.rule, recurrence, series):
        return shape.rule
    return from_graph(recurrence, series)


def original_start(raw: dict[str, Any], series: SeriesStart) -> Moment:
    """An occurrence's original start: an instant, or a date in an all-day series."""
    instant = parse_instant(raw.get("originalStart"))
    if instant is None:
        raise ValueError("an occurrence without originalStart")
    if isinstance(series.start, datetime):
        return instant
    return instant.astimezone(zone_info(series.zone) or UTC).date()


def version_of(raw: dict[str, Any]) -> str | None:
    etag = raw.get("@odata.etag")
    if etag:
        return str(etag)
    key = raw.get("changeKey")
    return f'W/"{key}"' if key else None


def modified_of(raw: dict[str, Any]) -> datetime | None:
    return parse_instant(raw.get("lastModifiedDateTime"))


# -- exception ids -------------------------------------------------------------------------------


def exception_id(series_id: str, original: Moment) -> str:
    if isinstance(original, datetime):
        return f"{series_id}{SEPARATOR}{original.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return f"{series_id}{SEPARATOR}{original:%Y%m%d}"


def parse_exception_id(event_id: str) -> tuple[str, Moment] | None:
    series_id, sep, key = event_id.rpartition(SEPARATOR)
    if not sep or not series_id:
        return None
    try:
        if "T" in key:
            return series_id, datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return series_id, datetime.strptime(key, "%Y%m%d").date()
    except ValueError:
        return None


def same_moment(a: Moment, b: Moment) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a == b
    return _day(a) == _day(b)


def _day(moment: Moment) -> date:
    return moment.date() if isinstance(moment, datetime) else moment


def _body_text(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    content = str(body.get("content") or "")
    if str(body.get("contentType", "text")).lower() == "html":
        return " ".join(html.unescape(_TAGS.sub(" ", content)).split())
    return content


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
