"""Query parameters of `events.list`, `events.instances`, `events.watch` and
`calendarList.list`, checked as Google documents them: which may not be combined with a sync
token, bounds, orderings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .datetimes import parse_rfc3339
from .errors import ApiError, bad_request

DEFAULT_PAGE = 250
MAX_PAGE = 2500
LIST_DEFAULT_PAGE = 100  # calendarList's pages
LIST_MAX_PAGE = 250
# Parameters Google refuses next to a syncToken.
SYNC_FORBIDDEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)

Params = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class EventsQuery:
    sync_token: str | None = None
    page_token: str | None = None
    max_results: int = DEFAULT_PAGE
    single_events: bool = False
    show_deleted: bool = False
    time_min: datetime | None = None
    time_max: datetime | None = None
    updated_min: datetime | None = None
    q: str | None = None
    ical_uid: str | None = None
    order_by: str | None = None
    original_start: str | None = None
    private_props: tuple[tuple[str, str], ...] = ()
    shared_props: tuple[tuple[str, str], ...] = ()
    event_types: tuple[str, ...] = field(default=())

    @property
    def incremental(self) -> bool:
        return self.sync_token is not None


def parse_events_query(params: Params) -> EventsQuery:
    sync_token = _text(params, "syncToken")
    if sync_token is not None:
        _refuse_sync_restrictions(params)
    show_deleted = _boolean(params, "showDeleted")
    if sync_token is not None and show_deleted is False:
        raise bad_request("showDeleted cannot be false with a sync token.", location="showDeleted")
    query = EventsQuery(
        sync_token=sync_token,
        page_token=_text(params, "pageToken"),
        max_results=_page_size(params),
        single_events=bool(_boolean(params, "singleEvents")),
        show_deleted=bool(show_deleted),
        time_min=_timestamp(params, "timeMin"),
        time_max=_timestamp(params, "timeMax"),
        updated_min=_timestamp(params, "updatedMin"),
        q=_text(params, "q"),
        ical_uid=_text(params, "iCalUID"),
        order_by=_text(params, "orderBy"),
        original_start=_text(params, "originalStart"),
        private_props=_properties(params, "privateExtendedProperty"),
        shared_props=_properties(params, "sharedExtendedProperty"),
        event_types=tuple(params.get("eventTypes", ())),
    )
    _check_combinations(query)
    return query


@dataclass(frozen=True)
class CalendarListQuery:
    paging: EventsQuery  # its syncToken, pageToken and maxResults
    min_access_role: str | None
    show_hidden: bool
    show_deleted: bool


def parse_calendar_list_query(params: Params) -> CalendarListQuery:
    """An incremental list always shows hidden and deleted entries, and takes no
    `minAccessRole`, nor `showHidden` or `showDeleted` false."""
    sync_token = _text(params, "syncToken")
    hidden, deleted = _boolean(params, "showHidden"), _boolean(params, "showDeleted")
    minimum = _text(params, "minAccessRole")
    if sync_token is not None:
        for name, value in (("showHidden", hidden), ("showDeleted", deleted)):
            if value is False:
                raise bad_request(f"{name} cannot be false with a sync token.", location=name)
        if minimum is not None:
            raise bad_request("minAccessRole cannot be used with a sync token.",
                              location="minAccessRole")  # fmt: skip
    size = _page_size(params, LIST_DEFAULT_PAGE, LIST_MAX_PAGE)
    paging = EventsQuery(sync_token=sync_token, page_token=_text(params, "pageToken"),
                         max_results=size)  # fmt: skip
    incremental = sync_token is not None
    return CalendarListQuery(paging, minimum, incremental or bool(hidden),
                             incremental or bool(deleted))  # fmt: skip


def _refuse_sync_restrictions(params: Params) -> None:
    for name in SYNC_FORBIDDEN:
        if params.get(name):
            # Reason as reported by a third party; Google documents only the 400.
            raise ApiError(
                400,
                "syncTokenWithRequestRestrictions",
                "Sync token cannot be used with other request restrictions.",
                location_type="parameter",
                location=name,
            )


def _check_combinations(query: EventsQuery) -> None:
    if query.order_by not in (None, "startTime", "updated"):
        raise bad_request("Invalid value for: orderBy", location="orderBy")
    if query.order_by == "startTime" and not query.single_events:
        raise bad_request(
            "The requested ordering is not available for the particular query.",
            location="orderBy",
        )
    if query.time_min and query.time_max and query.time_min >= query.time_max:
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")


def _text(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _boolean(params: Params, name: str) -> bool | None:
    value = _text(params, name)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise bad_request(f"Invalid value for: {name}", location=name)
    return value.lower() == "true"


def _page_size(params: Params, default: int = DEFAULT_PAGE, largest: int = MAX_PAGE) -> int:
    value = _text(params, "maxResults")
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise bad_request("Invalid value for: maxResults", location="maxResults")
    return min(int(value), largest)


def _timestamp(params: Params, name: str) -> datetime | None:
    value = _text(params, name)
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise bad_request(
            f"Bad Request: {name} must be RFC3339 with an offset", location=name
        ) from exc


def _properties(params: Params, name: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for raw in params.get(name, ()):
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise bad_request(f"Invalid value for: {name}", location=name)
        pairs.append((key, value))
    return tuple(pairs)
