"""Expanding a recurring event into instances.

A series is expanded in the time zone of its start (`start.timeZone`), so wall-clock times survive
DST changes. Instance ids are `{eventId}_{YYYYMMDDTHHMMSSZ}` (UTC) or `{eventId}_{YYYYMMDD}` for
all-day series; `originalStartTime` is the start the recurrence gave the instance.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rruleset, rrulestr

from .datetimes import parse_event_datetime, zone

_SUFFIX = re.compile(r"^(\d{8})(T\d{6}Z)?$")
_UNTIL = re.compile(r"UNTIL=(\d{8})(T\d{6})?(Z?)", re.I)


@dataclass(frozen=True)
class Occurrence:
    """One start produced by the recurrence: aware in the series zone, or a naive midnight for
    all-day series."""

    start: datetime
    all_day: bool

    @property
    def suffix(self) -> str:
        if self.all_day:
            return self.start.strftime("%Y%m%d")
        return self.start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def split_instance_id(event_id: str) -> tuple[str, str] | None:
    """`abc_20240102T100000Z` -> (`abc`, `20240102T100000Z`); None for ids of ordinary events."""
    parent, sep, suffix = event_id.rpartition("_")
    if not sep or not parent or not _SUFFIX.match(suffix):
        return None
    return parent, suffix


class Series:
    """The recurrence of one stored event, ready to expand; ValueError if it cannot be parsed."""

    def __init__(self, resource: dict[str, Any], calendar_tz: str) -> None:
        start = parse_event_datetime(resource["start"])
        end = parse_event_datetime(resource["end"])
        self.all_day = not isinstance(start, datetime)
        if isinstance(start, datetime) and isinstance(end, datetime):
            self.zone = zone(resource["start"].get("timeZone") or calendar_tz)
            self.end_zone = zone(resource["end"].get("timeZone") or calendar_tz)
            self.dtstart = start.astimezone(self.zone)
            self.duration = end - start
        elif isinstance(start, date) and isinstance(end, date) and not isinstance(end, datetime):
            self.zone = self.end_zone = zone(calendar_tz)
            self.dtstart = datetime.combine(start, time(0))
            self.duration = end - start
        else:
            raise ValueError("start and end must both be dates or both be date-times")
        self.rules = _build_ruleset(resource.get("recurrence") or [], self.dtstart, self.zone)

    def between(
        self, after: datetime | None, before: datetime | None, limit: int
    ) -> list[Occurrence]:
        """Up to `limit` occurrences overlapping (after, before): end > after and start < before
        (aware bounds; None means unbounded)."""
        lower = None if after is None else self._local(after - self.duration)
        upper = None if before is None else self._local(before)
        found: list[Occurrence] = []
        for start in self._iterate(lower):
            if (upper is not None and start >= upper) or len(found) >= limit:
                break
            found.append(Occurrence(start, self.all_day))
        return found

    def horizon(self, now: datetime, days: int) -> datetime:
        """How far an open-ended expansion goes: `days` past now, or past the series' start if
        that is later (a series starting in a year still has instances to show)."""
        first = self.dtstart if self.dtstart.tzinfo else self.dtstart.replace(tzinfo=self.zone)
        return max(now, first) + timedelta(days=days)

    def occurrence(self, suffix: str) -> Occurrence | None:
        """The occurrence an instance-id suffix names, if the recurrence really produces it."""
        match = _SUFFIX.match(suffix)
        if not match or self.all_day != (match.group(2) is None):
            return None
        if self.all_day:
            candidate = datetime.strptime(suffix, "%Y%m%d")
        else:
            moment = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            candidate = moment.astimezone(self.zone)
        found = self.rules.after(candidate, inc=True)
        return Occurrence(candidate, self.all_day) if found == candidate else None

    def original_start(self, occ: Occurrence) -> dict[str, Any]:
        if occ.all_day:
            return {"date": occ.start.date().isoformat()}
        return {"dateTime": occ.start.isoformat(), "timeZone": self.zone.key}

    def instance_times(self, occ: Occurrence) -> tuple[dict[str, Any], dict[str, Any]]:
        """`start` and `end` of the instance (same duration as the series' first event)."""
        if occ.all_day:
            first = occ.start.date()
            return {"date": first.isoformat()}, {"date": (first + self.duration).isoformat()}
        end = (occ.start.astimezone(UTC) + self.duration).astimezone(self.end_zone)
        return (
            {"dateTime": occ.start.isoformat(), "timeZone": self.zone.key},
            {"dateTime": end.isoformat(), "timeZone": self.end_zone.key},
        )

    def _local(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.zone)
        return local.replace(tzinfo=None) if self.all_day else local

    def _iterate(self, after: datetime | None) -> Iterator[datetime]:
        if after is None:
            yield from self.rules
            return
        nxt = self.rules.after(after)
        while nxt is not None:
            yield nxt
            nxt = self.rules.after(nxt)


def _build_ruleset(lines: list[str], dtstart: datetime, tz: ZoneInfo) -> rruleset:
    rules = rruleset()
    has_rule = False
    for line in lines:
        name, params, values = _split_line(line)
        if name in ("RRULE", "EXRULE"):
            rule = _parse_rule(values, dtstart, tz)
            (rules.rrule if name == "RRULE" else rules.exrule)(rule)
            has_rule = has_rule or name == "RRULE"
        elif name in ("RDATE", "EXDATE"):
            add = rules.rdate if name == "RDATE" else rules.exdate
            for value in values.split(","):
                add(_parse_date_value(value.strip(), params, dtstart, tz))
        else:
            raise ValueError(f"unsupported recurrence line {line!r}")
    if not has_rule:
        rules.rdate(dtstart)  # a series of RDATEs still begins with its own start
    return rules


def _split_line(line: str) -> tuple[str, dict[str, str], str]:
    head, sep, values = line.partition(":")
    if not sep or not values:
        raise ValueError(f"malformed recurrence line {line!r}")
    name, *raw_params = head.split(";")
    params = dict(p.split("=", 1) for p in raw_params if "=" in p)
    return name.strip().upper(), {k.upper(): v for k, v in params.items()}, values.strip()


def _parse_rule(value: str, dtstart: datetime, tz: ZoneInfo) -> rrule:
    # dateutil insists UNTIL is UTC when DTSTART is aware and naive when it is not; Google accepts
    # either, so rewrite UNTIL into the form dateutil wants before parsing.
    value = _UNTIL.sub(lambda m: "UNTIL=" + _until(m, dtstart, tz), value)
    rule = rrulestr(value, dtstart=dtstart)
    if not isinstance(rule, rrule):
        raise ValueError(f"unsupported rule {value!r}")
    return rule


def _until(match: re.Match[str], dtstart: datetime, tz: ZoneInfo) -> str:
    day, clock, utc = match.group(1), match.group(2), match.group(3)
    if dtstart.tzinfo is None:  # all-day series: UNTIL is a date
        return day + (clock or "T000000")
    if utc:
        return day + (clock or "T000000") + "Z"
    local = datetime.strptime(day + (clock or "T235959"), "%Y%m%dT%H%M%S").replace(tzinfo=tz)
    return local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _parse_date_value(
    value: str, params: dict[str, str], dtstart: datetime, tz: ZoneInfo
) -> datetime:
    if len(value) == 8:
        day = datetime.strptime(value, "%Y%m%d")
        if dtstart.tzinfo is None:
            return day
        return datetime.combine(day.date(), dtstart.timetz())
    moment = datetime.strptime(value.rstrip("Zz"), "%Y%m%dT%H%M%S")
    if value[-1] in "Zz":
        aware = moment.replace(tzinfo=UTC)
    else:
        aware = moment.replace(tzinfo=zone(params["TZID"]) if "TZID" in params else tz)
    if dtstart.tzinfo is None:
        return datetime.combine(aware.date(), time(0))
    return aware.astimezone(tz)
