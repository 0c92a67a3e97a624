"""iCalendar (RFC 5545) VEVENTs to calsync's canonical events and back, for the CalDAV provider.

Reading: SUMMARY, DESCRIPTION, LOCATION, DTSTART/DTEND (or DURATION), STATUS and TRANSP become
the canonical fields; the calendar owner's ATTENDEE line (one of their addresses, see
`providers.caldav.owner`) with PARTSTAT=DECLINED makes the event `declined`. A DTSTART with a
TZID keeps that zone as `time_zone`; a floating time (no zone at all) is read as UTC. Writing
sets those properties on a VEVENT and leaves every other property alone (alarms, attendees and
their PARTSTATs, categories a person set survive our updates), never touches SEQUENCE (our
syncs are not reschedulings), and adds a VTIMEZONE for every TZID used.

calsync's private properties:
- `X-CALSYNC-MARKER`: the marker of the event calsync created (read back into `marker`);
- `X-CALSYNC-TZID`: the zone of an event the DTSTART cannot say it of (all-day, UTC);
- `X-CALSYNC-RRULE`: the series rule as calsync was given it, returned as long as the RRULE
  still means the same (iCalendar libraries reorder the parts of a rule).
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Component, Event, Timezone, vRecur, vText

from sync.event import CanonicalEvent, EventStatus, Moment, Recurrence, Transparency, as_instant

PRODID = "-//calsync//CalDAV provider//EN"
MARKER = "X-CALSYNC-MARKER"
ZONE = "X-CALSYNC-TZID"
RULE = "X-CALSYNC-RRULE"
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Z"})
_MOMENT_PROPERTIES = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")


class UnreadableEvent(ValueError):
    """A resource that is not an iCalendar object holding a VEVENT."""


class NotAnEvent(UnreadableEvent):
    """A calendar object of another kind (a task, a journal entry): not ours to sync."""


_OTHER_KINDS = ("VTODO", "VJOURNAL", "VFREEBUSY")


def parse_calendar(text: str) -> Calendar:
    try:
        calendar = Calendar.from_ical(_without_known_zones(text))
    except (ValueError, KeyError, IndexError) as error:
        raise UnreadableEvent(f"not iCalendar: {error}") from None
    if not isinstance(calendar, Calendar):
        raise UnreadableEvent("not a VCALENDAR")
    if not calendar.walk("VEVENT"):
        if any(calendar.walk(kind) for kind in _OTHER_KINDS):
            raise NotAnEvent("no VEVENT")
        raise UnreadableEvent("no VEVENT")
    return calendar


def _without_known_zones(text: str) -> str:
    """The text less the VTIMEZONEs of zones the zone database knows: TZIDs naming them are
    read from it anyway, and parsing the definitions is most of the cost of reading an event.
    `render` writes them again."""
    if "BEGIN:VTIMEZONE" not in text:
        return text
    kept: list[str] = []
    block: list[str] | None = None
    for line in text.splitlines(keepends=True):
        if block is None and line.startswith("BEGIN:VTIMEZONE"):
            block = [line]
        elif block is None:
            kept.append(line)
        else:
            block.append(line)
            if line.startswith("END:VTIMEZONE"):
                tzid = next((b[5:].strip() for b in block if b.startswith("TZID:")), None)
                if zone_named(tzid) is None:
                    kept.extend(block)
                block = None
    kept.extend(block or ())
    return "".join(kept)


def render(calendar: Calendar) -> str:
    """The calendar as text, with a VTIMEZONE for each zone its events name."""
    present = {str(tz.get("TZID")) for tz in calendar.walk("VTIMEZONE")}
    starts = [moment(e.get("DTSTART")) for e in calendar.walk("VEVENT") if "DTSTART" in e]
    years = sorted({m.year for m in starts if m is not None}) or [date.today().year]
    recurring = any("RRULE" in e for e in calendar.walk("VEVENT"))
    span = (years[0] - 1, years[-1] + (10 if recurring else 2))
    for tzid in sorted(zones_used(calendar) - present):
        vtimezone = _vtimezone(tzid, span)
        if vtimezone is not None:
            calendar.subcomponents.insert(0, vtimezone)
    return str(calendar.to_ical().decode())


def zones_used(calendar: Calendar) -> set[str]:
    used: set[str] = set()
    for event in calendar.walk("VEVENT"):
        for name in _MOMENT_PROPERTIES:
            for prop in _as_list(event.get(name)):
                tzid = getattr(prop, "params", {}).get("TZID")
                if tzid:
                    used.add(str(tzid))
    return used


@functools.lru_cache(maxsize=256)
def _vtimezone(tzid: str, span: tuple[int, int]) -> Timezone | None:
    zone = zone_named(tzid)
    if zone is None:
        return None  # a zone we do not know: the event carries its own VTIMEZONE, or none
    return Timezone.from_tzinfo(
        zone, tzid=tzid, first_date=date(span[0], 1, 1), last_date=date(span[1], 1, 1)
    )


def zone_named(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


# -- reading ----------------------------------------------------------------------------------


def moment(prop: Any) -> Moment | None:
    """A DTSTART-like property as an aware datetime (floating read as UTC) or a date."""
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    return None


def moment_key(value: Moment) -> str:
    """The key of an occurrence slot in ids: UTC `YYYYMMDDTHHMMSSZ`, or `YYYYMMDD`."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def key_moment(key: str, zone: Any = None) -> Moment:
    if len(key) == 8:
        return datetime.strptime(key, "%Y%m%d").date()
    instant = datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return instant.astimezone(zone) if zone is not None else instant


def is_key(text: str) -> bool:
    try:
        key_moment(text)
    except ValueError:
        return False
    return True


def event_of(
    component: Component,
    recurrence: Recurrence | None = None,
    own_addresses: frozenset[str] = frozenset(),
) -> CanonicalEvent:
    start = moment(component.get("DTSTART"))
    if start is None:
        raise UnreadableEvent("a VEVENT without DTSTART")
    end = _end_of(component, start)
    all_day = not isinstance(start, datetime)
    if all_day and isinstance(end, datetime):
        end = end.date()
    elif not all_day and not isinstance(end, datetime):
        end = start
    assert isinstance(start, date) and isinstance(end, date)
    end = end if as_instant(end) >= as_instant(start) else start
    status = str(component.get("STATUS", "")).upper()
    transp = str(component.get("TRANSP", "")).upper()
    return CanonicalEvent(
        title=str(component.get("SUMMARY", "")),
        start=start,
        end=end,
        description=str(component.get("DESCRIPTION", "")),
        location=str(component.get("LOCATION", "")),
        all_day=all_day,
        time_zone=_zone_of(component),
        status=EventStatus.CANCELLED if status == "CANCELLED" else EventStatus.CONFIRMED,
        transparency=Transparency.FREE if transp == "TRANSPARENT" else Transparency.BUSY,
        recurrence=recurrence,
        declined=declined_by(component, own_addresses),
    )


def user_address(uri: str) -> str:
    """A calendar user address as compared: `mailto:Alice@Example.com` is `alice@example.com`."""
    text = uri.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return text.lower()


def declined_by(component: Component, own_addresses: frozenset[str]) -> bool:
    """The owner is an ATTENDEE whose PARTSTAT is DECLINED (TENTATIVE, NEEDS-ACTION and
    ACCEPTED still block time)."""
    if not own_addresses:
        return False
    for attendee in _as_list(component.get("ATTENDEE")):
        if user_address(str(attendee)) in own_addresses:
            partstat = getattr(attendee, "params", {}).get("PARTSTAT", "")
            return str(partstat).upper() == "DECLINED"
    return False


def _end_of(component: Component, start: Moment) -> Moment:
    end = moment(component.get("DTEND"))
    if end is not None:
        return end
    duration = getattr(component.get("DURATION"), "dt", None)
    if isinstance(duration, timedelta):
        return start + duration
    # RFC 5545 3.6.1: a dated event without an end lasts a day, a timed one no time at all.
    return start if isinstance(start, datetime) else start + timedelta(days=1)


def _zone_of(component: Component) -> str | None:
    tzid = component["DTSTART"].params.get("TZID")
    if tzid:
        return str(tzid) if zone_named(str(tzid)) is not None else None
    return x_text(component, ZONE)


def rule_of(component: Component) -> str | None:
    rules = _as_list(component.get("RRULE"))
    if not rules:
        return None
    text = str(rules[0].to_ical().decode())
    given = x_text(component, RULE)
    if given is not None and _same_rule(given, text):
        return given
    return text


def _same_rule(a: str, b: str) -> bool:
    try:
        return bool(vRecur.from_ical(a).to_ical() == vRecur.from_ical(b).to_ical())
    except ValueError:
        return False


def marker_of(component: Component | None) -> str | None:
    return None if component is None else x_text(component, MARKER)


def x_text(component: Component, name: str) -> str | None:
    """An X- property's text. Parsers keep an unknown property's value as written, so the
    TEXT escapes (RFC 5545 3.3.11) are undone here."""
    if name not in component:
        return None
    value = component[name]
    if isinstance(value, vText):
        return str(value)  # parsed as TEXT: already unescaped
    raw = value.to_ical() if hasattr(value, "to_ical") else value
    return _unescape(raw.decode() if isinstance(raw, bytes) else str(raw))


def _unescape(text: str) -> str:
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append("\n" if nxt in "nN" and nxt else nxt)
        else:
            out.append(char)
    return "".join(out)


def exdates_of(component: Component) -> list[Moment]:
    found: list[Moment] = []
    for prop in _as_list(component.get("EXDATE")):
        for value in getattr(prop, "dts", []):
            m = moment(value)
            if m is not None:
                found.append(m)
    return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


# -- writing ----------------------------------------------------------------------------------


def new_calendar() -> Calendar:
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    return calendar


def new_vevent(uid: str, event: CanonicalEvent, marker: str | None) -> Event:
    component = Event()
    component.add("UID", uid)
    fill(component, event)
    if marker:
        component.add(MARKER, marker)
    return component


def fill(component: Component, event: CanonicalEvent) -> None:
    """Write the canonical fields onto `component`, keeping its other properties."""
    for name in ("SUMMARY", "DESCRIPTION", "LOCATION", "DTSTART", "DTEND", "DURATION",
                 "STATUS", "TRANSP", ZONE, "DTSTAMP", "LAST-MODIFIED"):  # fmt: skip
        component.pop(name, None)
    now = datetime.now(UTC).replace(microsecond=0)
    component.add("DTSTAMP", now)
    component.add("LAST-MODIFIED", now)
    component.add("SUMMARY", event.title)
    for name, text in (("DESCRIPTION", event.description), ("LOCATION", event.location)):
        if text:
            component.add(name, text)
    zone = None if event.all_day else zone_named(event.time_zone)
    component.add("DTSTART", in_zone(event.start, zone))
    component.add("DTEND", in_zone(event.end, zone))
    if event.time_zone and (zone is None or event.time_zone in _UTC_NAMES):
        component.add(ZONE, event.time_zone)  # the DTSTART cannot carry it
    if event.status is EventStatus.CANCELLED:
        component.add("STATUS", "CANCELLED")
    component.add("TRANSP", "TRANSPARENT" if event.transparency is Transparency.FREE else "OPAQUE")


def in_zone(value: Moment, zone: ZoneInfo | None) -> Moment:
    if not isinstance(value, datetime):
        return value
    if zone is None or str(zone.key) in _UTC_NAMES:
        return value.astimezone(UTC)
    return value.astimezone(zone)


def set_rule(component: Component, rule: str | None) -> None:
    component.pop("RRULE", None)
    component.pop(RULE, None)
    if not rule:
        return
    try:
        parsed = vRecur.from_ical(rule)
    except ValueError:
        parsed = None
    if not parsed or "FREQ" not in parsed:
        raise UnreadableEvent(f"not a recurrence rule: {rule!r}")
    component.add("RRULE", parsed)
    if parsed.to_ical().decode() != rule:
        component.add(RULE, rule)


def set_exdates(component: Component, values: list[Moment]) -> None:
    component.pop("EXDATE", None)
    if values:
        zone = start_zone(component)
        component.add("EXDATE", [in_zone(v, zone) for v in sorted(values, key=moment_key)])


def start_zone(component: Component) -> ZoneInfo | None:
    start = moment(component.get("DTSTART"))
    tzinfo = start.tzinfo if isinstance(start, datetime) else None
    return tzinfo if isinstance(tzinfo, ZoneInfo) else None


def override_from(master: Component, slot: Moment) -> Event:
    """A new RECURRENCE-ID component for `slot` of `master`, shaped like the master."""
    override = Event()
    for name, value in master.property_items(recursive=False):
        if name not in ("BEGIN", "END", "RRULE", "RDATE", "EXDATE", RULE, "RECURRENCE-ID"):
            override.add(name, value, encode=False)
    override.add("RECURRENCE-ID", in_zone(slot, start_zone(master)))
    return override
