"""The sandbox's whole world behind one lock: apps and their installations, schedules,
events, tokens, injected faults and the webhook sender. Every HTTP route is a thin wrapper over
a method here, and tests or `calsync demo` may call the same methods directly.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.wix.calendar import Calendar, Change
from sandbox.wix.errors import WixError, invalid, not_found
from sandbox.wix.faults import FaultPlan
from sandbox.wix.model import (
    BUSINESS_SCHEDULE_EXTERNAL_ID,
    OVERRIDES_NAMESPACE,
    RECURRENCE_TYPES,
    WRITABLE_FIELDS,
    Actor,
    App,
    Event,
    Schedule,
    Site,
    effective_overrides,
    new_id,
    render_event,
)
from sandbox.wix.oauth import TokenIssuer
from sandbox.wix.query import (
    decode_cursor,
    matches,
    mentions,
    paginate,
    read_limit,
)
from sandbox.wix.signing import SigningKey
from sandbox.wix.webhooks import (
    DeliveryOptions,
    WebhookDispatcher,
    calendar_event_data,
    calendar_event_type,
)
from sandbox.wix.zoned import format_local, from_utc, parse_local, to_utc, zone

Clock = Callable[[], datetime]
DEFAULT_RECURRENCE_TYPES = ["NONE", "INSTANCE", "EXCEPTION"]
DEFAULT_WINDOW = timedelta(days=365)
MAX_BULK = 100
MAX_BULK_UPDATE = 50  # Bulk Update Event takes at most 50 events


def system_clock() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand; starts at the real time unless told otherwise."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or system_clock()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


class WixState:
    def __init__(
        self, *, clock: Clock | None = None, delivery: DeliveryOptions | None = None
    ) -> None:
        self.clock: Clock = clock or system_clock
        self.apps: dict[str, App] = {}
        self.sites: dict[str, Site] = {}
        self.schedules: dict[str, Schedule] = {}
        self.calendar = Calendar()
        self.tokens = TokenIssuer(self.clock)
        self.faults = FaultPlan()
        self.webhooks = WebhookDispatcher(self.clock, delivery)
        self._lock = threading.RLock()
        self._sequences: dict[str, int] = {}

    def close(self) -> None:
        self.webhooks.close()

    # apps and their installations

    def add_app(
        self, app_id: str | None = None, secret: str | None = None, webhook_url: str | None = None
    ) -> App:
        """Register an app with a fresh RSA key pair; `app.public_key_pem` verifies its webhooks."""
        app = App(
            app_id=app_id or new_id(),
            secret=secret or secrets.token_urlsafe(24),
            key=SigningKey.generate(),
            webhook_url=webhook_url,
        )
        with self._lock:
            self.apps[app.app_id] = app
        return app

    def app(self, app_id: str) -> App:
        with self._lock:
            if app_id not in self.apps:
                raise not_found("app", app_id)
            return self.apps[app_id]

    def set_webhook_url(self, app_id: str, url: str | None) -> None:
        self.app(app_id).webhook_url = url

    def install(self, app_id: str, instance_id: str | None = None, time_zone: str = "UTC") -> Site:
        """Install the app on a new site (with its business schedule); sends AppInstalled."""
        zone(time_zone)
        app = self.app(app_id)
        site = Site(instance_id=instance_id or new_id(), app_id=app_id, time_zone=time_zone)
        with self._lock:
            self.sites[site.instance_id] = site
        self.add_schedule(site.instance_id, "Business", external_id=BUSINESS_SCHEDULE_EXTERNAL_ID)
        self.webhooks.publish(
            app,
            site.instance_id,
            "AppInstalled",
            {"appId": app_id, "originInstanceId": ""},
            Actor.wix_user().identity(),
        )
        return site

    def remove(self, instance_id: str) -> None:
        """Uninstall: tokens stop working, calls are refused; sends AppRemoved."""
        site = self._site(instance_id)
        with self._lock:
            site.installed = False
        self.tokens.revoke_instance(instance_id)
        self.webhooks.publish(
            self.app(site.app_id),
            instance_id,
            "AppRemoved",
            {"appId": site.app_id},
            Actor.wix_user().identity(),
        )

    def exchange_token(self, body: Any) -> dict[str, Any]:
        with self._lock:
            return self.tokens.exchange(body, self.apps, self.sites)

    # schedules

    def add_schedule(
        self,
        instance_id: str,
        name: str,
        *,
        external_id: str | None = None,
        time_zone: str | None = None,
        external_calendar_overrides: dict[str, str] | None = None,
        schedule_id: str | None = None,
        owner_user_id: str | None = None,
    ) -> dict[str, Any]:
        """A schedule (e.g. a staff member's, `external_id` = the resource id, `owner_user_id`
        their Wix user) on a site."""
        site = self._site(instance_id)
        zone(time_zone or site.time_zone)
        schedule = Schedule(
            id=schedule_id or new_id(),
            instance_id=instance_id,
            external_id=external_id or new_id(),
            name=name,
            time_zone=time_zone or site.time_zone,
            created=self.clock(),
            owner_user_id=owner_user_id,
        )
        if external_calendar_overrides:
            schedule.extended_fields = _overrides_fields(external_calendar_overrides)
        with self._lock:
            self.schedules[schedule.id] = schedule
            return schedule.to_json()

    def set_schedule_overrides(
        self, instance_id: str, schedule_id: str, overrides: dict[str, str]
    ) -> dict[str, Any]:
        """Set a schedule's externalCalendarOverrides (`{title, description}`)."""
        with self._lock:
            schedule = self._schedule(instance_id, schedule_id)
            schedule.extended_fields = _overrides_fields(overrides)
            schedule.revision += 1
            schedule.updated = self.clock()
            return schedule.to_json()

    def update_schedule(self, instance_id: str, schedule_id: str, raw: Any) -> dict[str, Any]:
        """Update Schedule at its current `revision`: the `extendedFields` namespaces given (each
        replaces that namespace; others stay). Other fields are not writable here."""
        given = _object(raw, "schedule")
        with self._lock:
            schedule = self._schedule(instance_id, schedule_id)
            if given.get("revision") in (None, ""):
                raise WixError(428, "REVISION_REQUIRED", "the schedule's revision is required")
            if str(given["revision"]) != str(schedule.revision):
                raise WixError(409, "REVISION_MISMATCH", f"the schedule is at revision "
                               f"{schedule.revision}")  # fmt: skip
            namespaces = _object(given.get("extendedFields", {}), "schedule.extendedFields").get(
                "namespaces", {})  # fmt: skip
            if not isinstance(namespaces, dict) or not all(
                isinstance(v, dict) for v in namespaces.values()
            ):
                raise invalid("schedule.extendedFields", "must be {namespaces: {<name>: {...}}}")
            kept = schedule.extended_fields.get("namespaces", {})
            schedule.extended_fields = {"namespaces": {**kept, **namespaces}}
            schedule.revision += 1
            schedule.updated = self.clock()
            return schedule.to_json()

    def get_schedule(self, instance_id: str, schedule_id: str) -> dict[str, Any]:
        with self._lock:
            return self._schedule(instance_id, schedule_id).to_json()

    def query_schedules(self, instance_id: str, request: dict[str, Any]) -> dict[str, Any]:
        query = _object(request.get("query", {}), "query")
        paging = _object(query.get("cursorPaging", {}), "query.cursorPaging")
        carry: dict[str, Any] = {"filter": _object(query.get("filter", {}), "query.filter")}
        after = None
        if paging.get("cursor"):
            carry = decode_cursor(paging["cursor"])
            after = carry.pop("after", None)
        with self._lock:
            self._site(instance_id)
            docs = [s.to_json() for s in self.schedules.values() if s.instance_id == instance_id]
        flt = _object(carry.get("filter", {}), "query.cursorPaging.cursor")
        docs = [doc for doc in docs if matches(doc, flt)]
        docs.sort(key=_created_key)
        page = paginate(docs, _created_key, read_limit(paging, 50, 100), after, False, carry)
        return {"schedules": page.items, "pagingMetadata": page.metadata()}

    # events

    def create_event(
        self, instance_id: str, event: Any, actor: Actor | None = None
    ) -> dict[str, Any]:
        raw = _object(event, "event")
        if not raw.get("scheduleId"):
            raise invalid("event.scheduleId", "required")
        with self._lock:
            self._site(instance_id)
            schedule = self._schedule(instance_id, str(raw["scheduleId"]))
            change = self.calendar.create(schedule, raw, actor or Actor.wix_user(), self.clock())
            return self._announce(instance_id, [change], actor)

    def get_event(
        self, instance_id: str, event_id: str, time_zone: str | None = None
    ) -> dict[str, Any]:
        if time_zone is not None:
            zone(time_zone, "timeZone")
        with self._lock:
            site = self._site(instance_id)
            return self._render(
                self.calendar.get(instance_id, event_id), time_zone or site.time_zone
            )

    def update_event(
        self,
        instance_id: str,
        event: Any,
        *,
        fieldmask: Any = None,
        actor: Actor | None = None,
        require_revision: bool = True,
    ) -> dict[str, Any]:
        """Update `event["id"]`. `event["revision"]` must be current unless `require_revision`
        is off (the site owner editing in the dashboard)."""
        raw = _object(event, "event")
        if not raw.get("id"):
            raise invalid("event.id", "required")
        paths = _fieldmask_paths(fieldmask)
        with self._lock:
            self._site(instance_id)
            current = self.calendar.get(instance_id, str(raw["id"]))
            result, changes = self.calendar.update(
                current, raw, paths, require_revision=require_revision, now=self.clock()
            )
            self._announce(instance_id, changes, actor)
            return self._render(result, self._site(instance_id).time_zone)

    def cancel_event(
        self,
        instance_id: str,
        event_id: str,
        *,
        revision: Any = None,
        actor: Actor | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            self._site(instance_id)
            current = self.calendar.get(instance_id, event_id)
            result, changes = self.calendar.cancel(current, revision, now=self.clock())
            self._announce(instance_id, changes, actor)
            return self._render(result, self._site(instance_id).time_zone)

    def query_events(self, instance_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Query Events: a window of expanded events, filtered, sorted by start, cursor-paged."""
        query = _object(request.get("query", {}), "query")
        paging = _object(query.get("cursorPaging", {}), "query.cursorPaging")
        limit = read_limit(paging, 100, 1000)
        with self._lock:
            site = self._site(instance_id)
            if paging.get("cursor"):
                carry = _event_cursor(paging["cursor"])
                after = carry.pop("after", None)
            else:
                carry, after = _event_query(request, query, site, self.clock()), None
            tz = carry["timeZone"]
            start = to_utc(parse_local(carry["fromLocalDate"], "fromLocalDate"), tz)
            end = to_utc(parse_local(carry["toLocalDate"], "toLocalDate"), tz)
            found = self.calendar.window(instance_id, start, end, carry["recurrenceType"])
            docs = [self._render(event, tz) for event in found]
        flt = carry["filter"]
        docs = [doc for doc in docs if matches(doc, flt) and _visible_by_default(doc, flt)]
        descending = carry["descending"]
        docs.sort(key=_start_key, reverse=descending)
        page = paginate(docs, _start_key, limit, after, descending, carry)
        return {"events": page.items, "pagingMetadata": page.metadata()}

    def bulk_create_events(
        self, instance_id: str, request: dict[str, Any], actor: Actor | None = None
    ) -> dict[str, Any]:
        return _bulk(
            request,
            _bulk_items(request, "events", MAX_BULK),
            lambda item: self.create_event(
                instance_id, _object(item, "events[]").get("event"), actor
            ),
        )

    def bulk_update_events(
        self, instance_id: str, request: dict[str, Any], actor: Actor | None = None
    ) -> dict[str, Any]:
        def update(item: Any) -> dict[str, Any]:
            entry = _object(item, "events[]")
            mask = entry.get("fieldmask", entry.get("fieldMask"))
            return self.update_event(instance_id, entry.get("event"), fieldmask=mask, actor=actor)

        return _bulk(request, _bulk_items(request, "events", MAX_BULK_UPDATE), update)

    def bulk_cancel_events(
        self, instance_id: str, request: dict[str, Any], actor: Actor | None = None
    ) -> dict[str, Any]:
        return _bulk(
            request,
            _bulk_items(request, "eventIds", MAX_BULK),
            lambda event_id: self.cancel_event(instance_id, str(event_id), actor=actor),
        )

    def effective_overrides(self, instance_id: str, event_id: str) -> dict[str, str]:
        """A session's externalCalendarOverrides: its own, else its schedule's, field by field."""
        event = self.get_event(instance_id, event_id)
        return effective_overrides(event, self.get_schedule(instance_id, event["scheduleId"]))

    # internals

    def _site(self, instance_id: str) -> Site:
        with self._lock:
            site = self.sites.get(instance_id)
        if site is None or not site.installed:
            raise not_found("instance", instance_id)
        return site

    def _schedule(self, instance_id: str, schedule_id: str) -> Schedule:
        schedule = self.schedules.get(schedule_id)
        if schedule is None or schedule.instance_id != instance_id:
            raise not_found("schedule", schedule_id)
        return schedule

    def _render(self, event: Event, view_tz: str) -> dict[str, Any]:
        return render_event(event, self.schedules[event.schedule_id], view_tz)

    def _announce(
        self, instance_id: str, changes: list[Change], actor: Actor | None
    ) -> dict[str, Any]:
        """Queue a webhook per change (none for INSTANCEs); returns the first change's event."""
        site = self._site(instance_id)
        app = self.app(site.app_id)
        identity = (actor or Actor.wix_user()).identity()
        rendered = [self._render(change.event, site.time_zone) for change in changes]
        for change, entity in zip(changes, rendered, strict=True):
            if change.event.recurrence_type == "INSTANCE":
                continue
            sequence = self._sequences.get(change.event.id, 0) + 1
            self._sequences[change.event.id] = sequence
            data = calendar_event_data(change.slug, entity, sequence, self.clock())
            self.webhooks.publish(
                app, instance_id, calendar_event_type(change.slug), data, identity
            )
        return rendered[0]


def _overrides_fields(overrides: Any) -> dict[str, Any]:
    given = _object(overrides, "externalCalendarOverrides")
    kept = {k: v for k, v in given.items() if k in ("title", "description") and v}
    return {"namespaces": {OVERRIDES_NAMESPACE: kept}}


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(field, "expected an object")
    return value


def _event_query(
    request: dict[str, Any], query: dict[str, Any], site: Site, now: datetime
) -> dict[str, Any]:
    """The query's parameters with defaults filled in, as a cursor will carry them."""
    tz = request.get("timeZone") or site.time_zone
    zone(tz, "timeZone")
    start = (
        parse_local(request["fromLocalDate"], "fromLocalDate")
        if request.get("fromLocalDate")
        else from_utc(now, tz).replace(microsecond=0)
    )
    end = (
        parse_local(request["toLocalDate"], "toLocalDate")
        if request.get("toLocalDate")
        else start + DEFAULT_WINDOW
    )
    if end <= start:
        raise invalid("toLocalDate", "must be after fromLocalDate")
    kinds = request.get("recurrenceType") or DEFAULT_RECURRENCE_TYPES
    if not isinstance(kinds, list) or any(kind not in RECURRENCE_TYPES for kind in kinds):
        raise invalid("recurrenceType", f"a list of {', '.join(RECURRENCE_TYPES)}")
    return {
        "filter": _object(query.get("filter", {}), "query.filter"),
        "descending": _descending(query.get("sort")),
        "fromLocalDate": format_local(start),
        "toLocalDate": format_local(end),
        "recurrenceType": kinds,
        "timeZone": tz,
    }


def _event_cursor(cursor: Any) -> dict[str, Any]:
    carry = decode_cursor(cursor)
    expected = {
        "filter",
        "descending",
        "fromLocalDate",
        "toLocalDate",
        "recurrenceType",
        "timeZone",
    }
    if not expected <= carry.keys():
        raise invalid("query.cursorPaging.cursor", "not a cursor of an events query")
    return carry


def _descending(sort: Any) -> bool:
    """Only sorting by start is supported, as in the other Wix calendar queries."""
    if not sort:
        return False
    if not isinstance(sort, list) or len(sort) != 1 or not isinstance(sort[0], dict):
        raise invalid("query.sort", "sort by one field: start")
    if sort[0].get("fieldName") not in ("start", "start.utcDate", "adjustedStart"):
        raise invalid("query.sort", "events can only be sorted by start")
    return str(sort[0].get("order", "ASC")).upper() == "DESC"


def _visible_by_default(doc: dict[str, Any], flt: dict[str, Any]) -> bool:
    """Cancelled and WORKING_HOURS events are left out unless the filter asks about them."""
    if doc["status"] == "CANCELLED" and not mentions(flt, "status"):
        return False
    return doc["type"] != "WORKING_HOURS" or mentions(flt, "type")


def _start_key(doc: dict[str, Any]) -> list[Any]:
    return [doc["start"]["utcDate"], doc["id"]]


def _created_key(doc: dict[str, Any]) -> list[Any]:
    return [doc["createdDate"], doc["id"]]


def _fieldmask_paths(mask: Any) -> list[str] | None:
    """A fieldmask as `["title", ...]`, `{"paths": [...]}` or `"title,start"`; top-level names."""
    if mask is None:
        return None
    if isinstance(mask, dict):
        mask = mask.get("paths", [])
    if isinstance(mask, str):
        mask = [part for part in mask.split(",") if part]
    if not isinstance(mask, list) or not all(isinstance(p, str) for p in mask):
        raise invalid("fieldmask", "expected a list of field paths")
    paths = sorted({path.strip().removeprefix("event.").split(".")[0] for path in mask})
    for path in paths:
        if path not in WRITABLE_FIELDS:
            raise invalid("fieldmask", f"{path!r} can't be updated")
    return paths


def _bulk_items(request: dict[str, Any], key: str, limit: int) -> list[Any]:
    items = request.get(key)
    if not isinstance(items, list) or not 1 <= len(items) <= limit:
        raise invalid(key, f"expected 1 to {limit} items")
    return items


def _bulk(
    request: dict[str, Any], items: list[Any], apply: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """Wix's bulk response: one result per item, in order; one item failing fails only itself.
    A succeeded item's event comes back only when the request asks for it (`returnEntity`)."""
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            entity = apply(item)
        except WixError as error:
            item_id = item if isinstance(item, str) else _item_id(item)
            metadata = {"originalIndex": index, "success": False, "error": error.item_error()}
            results.append({"itemMetadata": {"id": item_id, **metadata}})
            continue
        result: dict[str, Any] = {
            "itemMetadata": {"id": entity["id"], "originalIndex": index, "success": True}
        }
        if request.get("returnEntity") is True:
            result["item"] = entity
        results.append(result)
    successes = sum(1 for r in results if r["itemMetadata"]["success"])
    return {
        "results": results,
        "bulkActionMetadata": {
            "totalSuccesses": successes,
            "totalFailures": len(results) - successes,
            "undetailedFailures": 0,
        },
    }


def _item_id(item: Any) -> str | None:
    event = item.get("event") if isinstance(item, dict) else None
    return event.get("id") if isinstance(event, dict) else None
