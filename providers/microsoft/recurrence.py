"""RRULE <-> Graph's `patternedRecurrence`, and the occurrence starts a series should have.

calsync speaks RRULE values (`FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6`); Graph speaks a pattern
(daily, weekly, absolute/relative monthly and yearly) and a range (endDate, numbered, noEnd).
Rules Graph cannot express (BYHOUR, several BYMONTHDAY, ...) raise `UnsupportedRule`.
Reading produces one canonical spelling, so comparing two rules means comparing their Graph
patterns (`same_pattern`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dateutil.rrule import rrulestr

from providers.microsoft.timezones import zone_info

DAYS = {
    "MO": "monday",
    "TU": "tuesday",
    "WE": "wednesday",
    "TH": "thursday",
    "FR": "friday",
    "SA": "saturday",
    "SU": "sunday",
}
CODES = {name: code for code, name in DAYS.items()}
ORDER = list(DAYS)
INDEXES = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
ORDINALS = {name: number for number, name in INDEXES.items()}
_KNOWN = {
    "FREQ",
    "INTERVAL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "COUNT",
    "UNTIL",
    "WKST",
}


class UnsupportedRule(ValueError):
    """An RRULE Graph's recurrence patterns cannot express."""


@dataclass(frozen=True)
class SeriesStart:
    """Where a series starts: its first start (local wall time or date) and its zone."""

    start: datetime | date  # aware local datetime for timed series, a date for all-day ones
    zone: str  # the Windows or IANA name written to Graph

    @property
    def day(self) -> date:
        return self.start.date() if isinstance(self.start, datetime) else self.start


def to_graph(rule: str, series: SeriesStart) -> dict[str, Any]:
    """The `recurrence` object for an RRULE value (without the "RRULE:" prefix)."""
    parts = _parse(rule)
    return {"pattern": _pattern(parts, series.day), "range": _range(parts, series)}


def from_graph(recurrence: dict[str, Any], series: SeriesStart) -> str:
    """The canonical RRULE value of a Graph `recurrence`."""
    pattern, rng = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    kind = pattern.get("type")
    interval = int(pattern.get("interval") or 1)
    days = _codes(pattern.get("daysOfWeek") or [])
    parts: list[str] = []
    if kind == "daily":
        parts = ["FREQ=DAILY"]
    elif kind == "weekly":
        parts = ["FREQ=WEEKLY", f"BYDAY={','.join(days)}"]
        first = pattern.get("firstDayOfWeek") or "sunday"
        if interval > 1 and first != "monday":
            parts.append(f"WKST={CODES[first]}")
    elif kind == "absoluteMonthly":
        parts = ["FREQ=MONTHLY", f"BYMONTHDAY={int(pattern['dayOfMonth'])}"]
    elif kind == "relativeMonthly":
        parts = ["FREQ=MONTHLY", *_relative(days, pattern.get("index"))]
    elif kind == "absoluteYearly":
        month, day = int(pattern["month"]), int(pattern["dayOfMonth"])
        parts = ["FREQ=YEARLY", f"BYMONTH={month}", f"BYMONTHDAY={day}"]
    elif kind == "relativeYearly":
        parts = ["FREQ=YEARLY", f"BYMONTH={int(pattern['month'])}"]
        parts += _relative(days, pattern.get("index"))
    else:
        raise UnsupportedRule(f"unknown recurrence pattern {kind!r}")
    if interval > 1:
        parts.insert(1, f"INTERVAL={interval}")
    return ";".join(parts + _range_parts(rng, series))


def same_pattern(rule: str, recurrence: dict[str, Any], series: SeriesStart) -> bool:
    """Whether writing `rule` gives the recurrence Graph reports (same canonical RRULE)."""
    try:
        return from_graph(to_graph(rule, series), series) == from_graph(recurrence, series)
    except (UnsupportedRule, KeyError, ValueError):
        return False


def occurrence_starts(
    rule: str, series: SeriesStart, window_start: datetime, window_end: datetime
) -> list[datetime | date]:
    """The original starts the series has in [window_start, window_end), in order."""
    if isinstance(series.start, datetime):
        found = rrulestr(rule, dtstart=series.start).between(window_start, window_end, inc=True)
        return [moment for moment in found if moment < window_end]
    first = datetime.combine(series.start, datetime.min.time())
    lo, hi = window_start.replace(tzinfo=None), window_end.replace(tzinfo=None)
    days = rrulestr(_naive_until(rule), dtstart=first).between(lo - timedelta(days=1), hi, inc=True)
    return [d.date() for d in days if d < hi]


# -- RRULE -> Graph -------------------------------------------------------------------------------


def _parse(rule: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for piece in rule.removeprefix("RRULE:").split(";"):
        key, sep, value = piece.partition("=")
        if not sep or not value:
            raise UnsupportedRule(f"malformed rule part {piece!r}")
        if key.upper() not in _KNOWN:
            raise UnsupportedRule(f"{key} has no Graph equivalent")
        parts[key.upper()] = value.upper()
    if "FREQ" not in parts:
        raise UnsupportedRule("a rule needs FREQ")
    if "COUNT" in parts and "UNTIL" in parts:
        raise UnsupportedRule("COUNT and UNTIL together")
    return parts


def _pattern(parts: dict[str, str], first: date) -> dict[str, Any]:
    freq, interval = parts["FREQ"], int(parts.get("INTERVAL", "1"))
    days = _split_days(parts.get("BYDAY"))
    plain = [code for n, code in days if n is None]
    if freq == "DAILY" and plain and interval == 1:
        freq = "WEEKLY"  # every listed weekday is a weekly pattern in Graph
    if freq == "DAILY" and not days:
        return {"type": "daily", "interval": interval}
    if freq == "WEEKLY" and len(plain) == len(days):
        chosen = [DAYS[c] for c in plain] or [_weekday(first)]
        week_start = DAYS.get(parts.get("WKST", "MO"), "monday")
        return {
            "type": "weekly",
            "interval": interval,
            "daysOfWeek": chosen,
            "firstDayOfWeek": week_start,
        }
    if freq in ("MONTHLY", "YEARLY"):
        return _calendar_pattern(freq, parts, days, first, interval)
    raise UnsupportedRule(f"FREQ={freq} with BYDAY={parts.get('BYDAY')}")


def _calendar_pattern(
    freq: str,
    parts: dict[str, str],
    days: list[tuple[int | None, str]],
    first: date,
    interval: int,
) -> dict[str, Any]:
    month = int(parts.get("BYMONTH", str(first.month)))
    yearly = {"month": month} if freq == "YEARLY" else {}
    if freq == "YEARLY" and "," in parts.get("BYMONTH", ""):
        raise UnsupportedRule("several BYMONTH values")
    if not days:
        day = parts.get("BYMONTHDAY", str(first.day))
        if not day.isdigit():
            raise UnsupportedRule(f"BYMONTHDAY={day}")
        kind = "absoluteMonthly" if freq == "MONTHLY" else "absoluteYearly"
        return {"type": kind, "interval": interval, "dayOfMonth": int(day), **yearly}
    index = _index(days, parts.get("BYSETPOS"))
    kind = "relativeMonthly" if freq == "MONTHLY" else "relativeYearly"
    return {
        "type": kind,
        "interval": interval,
        "daysOfWeek": [DAYS[c] for _, c in days],
        "index": index,
        **yearly,
    }


def _index(days: list[tuple[int | None, str]], setpos: str | None) -> str:
    ordinals = {n for n, _ in days}
    if setpos is not None and ordinals == {None}:
        number = int(setpos)
    elif setpos is None and len(days) == 1 and days[0][0] is not None:
        number = days[0][0]
    else:
        raise UnsupportedRule("a relative pattern needs one nth weekday or BYSETPOS")
    if number not in INDEXES:
        raise UnsupportedRule(f"week index {number}")
    return INDEXES[number]


def _range(parts: dict[str, str], series: SeriesStart) -> dict[str, Any]:
    rng: dict[str, Any] = {"startDate": series.day.isoformat(), "recurrenceTimeZone": series.zone}
    if "COUNT" in parts:
        return {**rng, "type": "numbered", "numberOfOccurrences": int(parts["COUNT"])}
    if "UNTIL" in parts:
        return {**rng, "type": "endDate", "endDate": _until_day(parts["UNTIL"], series).isoformat()}
    return {**rng, "type": "noEnd"}


def _until_day(until: str, series: SeriesStart) -> date:
    """UNTIL as the local date of the last possible occurrence (Graph's inclusive endDate)."""
    if "T" not in until:
        return datetime.strptime(until, "%Y%m%d").date()
    moment = datetime.strptime(until.rstrip("Z"), "%Y%m%dT%H%M%S")
    if until.endswith("Z"):
        return moment.replace(tzinfo=UTC).astimezone(zone_info(series.zone) or UTC).date()
    return moment.date()


def _split_days(value: str | None) -> list[tuple[int | None, str]]:
    found: list[tuple[int | None, str]] = []
    for item in (value or "").split(","):
        if not item:
            continue
        code, number = item[-2:], item[:-2]
        if code not in DAYS or (number and not number.lstrip("+-").isdigit()):
            raise UnsupportedRule(f"BYDAY={item}")
        found.append((int(number) if number else None, code))
    return found


def _weekday(day: date) -> str:
    return DAYS[ORDER[day.weekday()]]


# -- Graph -> RRULE -------------------------------------------------------------------------------


def _codes(days: list[str]) -> list[str]:
    codes = [CODES[d.lower()] for d in days]
    return sorted(set(codes), key=ORDER.index)


def _relative(codes: list[str], index: Any) -> list[str]:
    number = ORDINALS.get(str(index or "first"), 1)
    if len(codes) == 1:
        return [f"BYDAY={number}{codes[0]}"]
    return [f"BYDAY={','.join(codes)}", f"BYSETPOS={number}"]


def _range_parts(rng: dict[str, Any], series: SeriesStart) -> list[str]:
    kind = rng.get("type")
    if kind == "numbered":
        return [f"COUNT={int(rng['numberOfOccurrences'])}"]
    if kind != "endDate":
        return []
    end = date.fromisoformat(str(rng["endDate"]))
    if not isinstance(series.start, datetime):
        return [f"UNTIL={end:%Y%m%d}"]
    local = datetime.combine(end, series.start.time(), tzinfo=series.start.tzinfo)
    last = local.astimezone(UTC)
    return [f"UNTIL={last:%Y%m%dT%H%M%SZ}"]


def _naive_until(rule: str) -> str:
    """dateutil wants UNTIL naive when DTSTART is naive (all-day series)."""
    return ";".join(p.removesuffix("Z") if p.startswith("UNTIL=") else p for p in rule.split(";"))
