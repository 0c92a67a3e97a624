"""Semantic rules for an event about to be stored, beyond the schema's types."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from .datetimes import parse_event_datetime
from .errors import ApiError, bad_request
from .recurrence import Series

_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_ENUMS = {
    "status": {"confirmed", "tentative", "cancelled"},
    "transparency": {"opaque", "transparent"},
    "visibility": {"default", "public", "private", "confidential"},
}
MAX_PROPERTY_KEY = 44
MAX_PROPERTY_VALUE = 1024


def check_event_id(event_id: str) -> None:
    """Client-chosen ids: base32hex (a-v, 0-9), 5 to 1024 characters."""
    if not _EVENT_ID.match(event_id):
        raise bad_request("Invalid resource id value.")


def check_event(resource: dict[str, Any], calendar_tz: str, *, instance: bool) -> None:
    """Raise a 400 unless the event could be stored by Google."""
    for field, allowed in _ENUMS.items():
        if field in resource and resource[field] not in allowed:
            raise bad_request(f"Invalid value for: {field}")
    if resource.get("status") == "cancelled" and "start" not in resource:
        return  # a cancellation needs no times
    _check_times(resource)
    if resource.get("recurrence"):
        if instance:
            raise bad_request("Recurrence is not allowed on an instance of a recurring event.")
        _check_recurrence(resource, calendar_tz)


def normalise_extended_properties(resource: dict[str, Any]) -> None:
    """Google silently drops keys longer than 44 characters and truncates values to 1024."""
    props = resource.get("extendedProperties")
    if not isinstance(props, dict):
        return
    for scope in ("private", "shared"):
        values = props.get(scope)
        if isinstance(values, dict):
            props[scope] = {
                key: str(value)[:MAX_PROPERTY_VALUE]
                for key, value in values.items()
                if len(key) <= MAX_PROPERTY_KEY and value is not None
            }


def _check_times(resource: dict[str, Any]) -> None:
    for field in ("start", "end"):
        if not resource.get(field):
            raise ApiError(400, "required", f"Missing {field} time.")
    try:
        start = parse_event_datetime(resource["start"])
    except ValueError as exc:
        raise bad_request("Invalid start time.") from exc
    try:
        end = parse_event_datetime(resource["end"])
    except ValueError as exc:
        raise bad_request("Invalid end time.") from exc
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise bad_request("Start and end times must either both be date or both be dateTime.")
    if end < start or (end == start and not isinstance(start, datetime)):
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")


def _check_recurrence(resource: dict[str, Any], calendar_tz: str) -> None:
    for field in ("start", "end"):
        value = resource[field]
        if value.get("dateTime") is not None and not value.get("timeZone"):
            raise ApiError(400, "required", f"Missing time zone definition for {field} time.")
    try:
        Series(resource, calendar_tz)
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request("Invalid recurrence rule.") from exc
