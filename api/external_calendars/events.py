"""`GET events`: the external calendars' events, as calsync knows them.

Served from calsync's own records, not by asking the providers: each imported event's link
keeps what the external calendar last showed (`Link.external_seen`). So the answer holds the
events of the tenant's connected (not disconnected) calendars that import into Wix, as of their
last sync; sessions calsync exported there are Wix's own and are not listed. Events are
sorted by start (then by an internal key); paging is by cursor, and a cursor carries the filter
it was made for, so the next page needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import CallerDep
from api.errors import bad_request, responses
from api.external_calendars.catalog import of
from api.external_calendars.common import rfc3339
from api.external_calendars.paging import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    make_cursor,
    not_a_cursor,
    paging_metadata,
    read_cursor,
)
from api.external_calendars.schema import (
    EventOut,
    ListEventsResponse,
)
from config import Settings
from models import Connection, ConnectionStatus, ExternalCalendar, Link, Side
from models.db import session_scope

router = APIRouter()


class Fieldset(StrEnum):
    NO_PI = "NO_PI"
    OWN_PI = "OWN_PI"


@dataclass(frozen=True)
class Filter:
    start: datetime
    end: datetime
    schedule_ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    all_day: bool | None = None

    def dump(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "s": list(self.schedule_ids),
            "u": list(self.user_ids),
            "a": self.all_day,
        }


@dataclass(frozen=True)
class Found:
    start: datetime
    key: str
    out: EventOut


@router.get(
    "/events",
    summary="List Events",
    description="Events of the tenant's external calendars overlapping `from`..`to` (required "
    "unless `cursorPaging.cursor` is given), sorted by start. Served from what calsync last "
    "synced, see docs/api.md. `fieldsets=OWN_PI` adds `title`, `calendarName` and "
    "`scheduleOwnerName`.",
    response_model=ListEventsResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403),
)
def list_events(
    caller: CallerDep,
    request: Request,
    start: Annotated[datetime | None, Query(alias="from",
                                            examples=["2026-12-01T00:00:00.000Z"])] = None,
    end: Annotated[datetime | None, Query(alias="to",
                                          examples=["2026-12-31T00:00:00.000Z"])] = None,
    schedule_ids: Annotated[list[str] | None, Query(alias="scheduleIds", max_length=100)] = None,
    user_ids: Annotated[list[str] | None, Query(alias="userIds", max_length=100)] = None,
    all_day: Annotated[bool | None, Query(alias="allDay")] = None,
    fieldsets: Annotated[list[Fieldset] | None, Query(max_length=2)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    partial_failure: Annotated[bool, Query(alias="partialFailure")] = False,
) -> ListEventsResponse:  # fmt: skip
    if cursor:
        where, after = _read_cursor(cursor)
    else:
        where = Filter(_instant(start, "from"), _instant(end, "to"), tuple(schedule_ids or ()),
                       tuple(user_ids or ()), all_day)  # fmt: skip
        after = None
        if where.end <= where.start:
            raise bad_request("must be later than `from`", "to", "INVALID_TIME_RANGE")
    with session_scope(request.app.state.engine) as db:
        found = events_in(db, request.app.state.settings, caller.tenant_id, where,
                          Fieldset.OWN_PI in (fieldsets or ()))  # fmt: skip
    found.sort(key=lambda f: (f.start, f.key))
    if after is not None:
        found = [f for f in found if (f.start, f.key) > after]
    page, more = found[:limit], len(found) > limit
    next_cursor = _make_cursor(where, page[-1]) if more else None
    return ListEventsResponse(
        events=[f.out for f in page],
        pagingMetadata=paging_metadata(len(page), next_cursor),
        failedProviderIds=[] if partial_failure else None,
    )


def events_in(db: Session, settings: Settings, tenant_id: str, where: Filter, with_pi: bool,
              provider: str | None = None) -> list[Found]:  # fmt: skip
    """The imported events of the tenant's connected calendars that match `where`."""
    query = (
        select(Link, ExternalCalendar, Connection)
        .join(ExternalCalendar, ExternalCalendar.id == Link.calendar_id)
        .join(Connection, Connection.id == Link.connection_id)
        .where(Connection.tenant_id == tenant_id,
               Connection.status != ConnectionStatus.DISCONNECTED,
               Link.origin == Side.EXTERNAL, ExternalCalendar.import_enabled.is_(True))
    )  # fmt: skip
    if where.schedule_ids:
        query = query.where(Connection.schedule_id.in_(where.schedule_ids))
    if where.user_ids:
        query = query.where(Connection.user_id.in_(where.user_ids))
    if provider is not None:
        query = query.where(Connection.provider == provider)
    found = []
    for link, calendar, connection in db.execute(query):
        item = _found(settings, link, calendar, connection, with_pi)
        if item is None or (where.all_day is not None and item.out.allDay is not where.all_day):
            continue
        if item.start < where.end and _end_of(link) > where.start:
            found.append(item)
    return found


def _found(settings: Settings, link: Link, calendar: ExternalCalendar, connection: Connection,
           with_pi: bool) -> Found | None:  # fmt: skip
    seen = link.external_seen
    if not isinstance(seen, dict) or seen.get("status") == "cancelled":
        return None
    all_day = bool(seen.get("allDay"))
    start = _moment(seen.get("start"))
    end = _end_of(link)
    system = of(settings, connection.provider)
    out = EventOut(
        scheduleId=connection.schedule_id,
        calendarType=system.out.calendarType,
        calendarName=(calendar.name or calendar.remote_id) if with_pi else None,
        title=str(seen.get("title") or "") if with_pi else None,
        start=rfc3339(start) or "", end=rfc3339(end) or "", allDay=all_day,
        scheduleOwnerId=connection.user_id,
        scheduleOwnerName=connection.schedule_owner_name if with_pi else None,
        tag=system.system,  # what tasks.sides tags the block with
    )  # fmt: skip
    return Found(start, link.id, out)


def _end_of(link: Link) -> datetime:
    seen = link.external_seen if isinstance(link.external_seen, dict) else {}
    return _moment(seen.get("end"))


def _moment(text: Any) -> datetime:
    """A stored start or end: an aware instant, or a date (all-day) taken at 00:00 UTC."""
    value = str(text or "1970-01-01")
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _instant(moment: datetime | None, field: str) -> datetime:
    if moment is None:
        raise bad_request("required unless cursorPaging.cursor is given", field,
                          "INVALID_TIME_RANGE")  # fmt: skip
    if moment.tzinfo is None:
        raise bad_request("needs a time zone offset or Z", field)
    return moment.astimezone(UTC)


def _aware(text: Any) -> datetime:
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError("naive")
    return moment


def _make_cursor(where: Filter, last: Found) -> str:
    return make_cursor({"f": where.dump(), "a": [last.start.isoformat(), last.key]})


def _read_cursor(cursor: str) -> tuple[Filter, tuple[datetime, str]]:
    body = read_cursor(cursor)
    try:
        data, after = body["f"], body["a"]
        where = Filter(
            _aware(data["from"]), _aware(data["to"]),
            tuple(str(s) for s in data["s"]), tuple(str(u) for u in data["u"]),
            None if data["a"] is None else bool(data["a"]),
        )  # fmt: skip
        return where, (_aware(after[0]), str(after[1]))
    except (ValueError, KeyError, TypeError, IndexError):
        raise not_a_cursor() from None
