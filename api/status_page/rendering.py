"""The page's templates (`templates/`) and the few filters they need to show times and the
values of a conflict the way a person reads them. Autoescaped: whatever a calendar or a
business named something is shown as text, never run as markup."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from models.types import utcnow

TEMPLATES = Path(__file__).parent / "templates"


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    seconds = int((utcnow() - moment).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{max(seconds, 0)} s ago"


def utc(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def millis(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


def shown_value(value: Any) -> str:
    """A conflict's value: text as it is, a `when` as its span, a whole event (a deletion
    conflict) by its title and span, nothing as deleted."""
    if value is None:
        return "(deleted)"
    if isinstance(value, dict):
        span = _span(str(value.get("start", "")), str(value.get("end", "")))
        if value.get("allDay"):
            span += " (all day)"
        return f"{value['title']}, {span}" if "title" in value else span
    return str(value) if value != "" else "(empty)"


def _span(start: str, end: str) -> str:
    """`2026-05-01 10:00 → 11:00 (+00:00)`: the end's date only when it differs."""
    try:
        begins, ends = datetime.fromisoformat(start), datetime.fromisoformat(end)
    except ValueError:
        return f"{start} → {end}"
    if len(start) == 10:  # all-day dates
        return start if start == end else f"{start} → {end}"
    same_day = begins.date() == ends.date()
    until = ends.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")
    offset = begins.strftime("%z")
    zone = f" ({offset[:3]}:{offset[3:]})" if offset else ""
    return f"{begins:%Y-%m-%d %H:%M} → {until}{zone}"


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    env.filters.update(ago=ago, utc=utc, millis=millis, shown=shown_value)
    return env
