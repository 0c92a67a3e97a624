"""Which events a list request returns, and in what form.

- Full listing: live events matching the filters; cancelled ones only with `showDeleted` (cancelled
  exceptions of a live series are listed anyway when `singleEvents` is false, as documented).
- Incremental listing: every entry changed since the sync token, deleted ones included.
- `singleEvents=true`: series are replaced by their instances; a changed exception stands
  for itself.
- Deleted entries are minimal (`id`, plus `recurringEventId`/`originalStartTime` for instances)
  unless `showDeleted=true` asked for the details.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .datetimes import instant, parse_rfc3339
from .errors import not_found
from .query import EventsQuery
from .store import EventStore, StoredEvent, render_instance

_STUB_FIELDS = ("kind", "etag", "id", "status", "recurringEventId", "originalStartTime")
_FREE_BUSY_FIELDS = (*_STUB_FIELDS, "start", "end", "transparency")


def full_listing(store: EventStore, query: EventsQuery, now: datetime) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for stored in sorted(store.events.values(), key=lambda s: s.order):
        if query.single_events and stored.parent_id:
            continue  # listed with their series
        if query.single_events and stored.is_series:
            entries.extend(_expanded(store, stored, query, now))
        elif _listed(store, stored, query):
            entries.append(stored.resource)
    return [_render(store, e, query.show_deleted) for e in _ordered(entries, query, store)]


def incremental_listing(
    store: EventStore, query: EventsQuery, since: int, now: datetime
) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    changed = [s for s in store.events.values() if s.change_seq > since]
    for stored in sorted(changed, key=lambda s: (s.change_seq, s.order)):
        if query.single_events and stored.is_series:
            entries.extend(_changed_instances(store, stored, since, now))
        elif _type_matches(stored.resource, query):
            entries.append(stored.resource)
    return [_render(store, e, query.show_deleted) for e in entries]


def instances_listing(
    store: EventStore, event_id: str, query: EventsQuery, now: datetime
) -> list[dict[str, Any]]:
    stored = store.events.get(event_id)
    if stored is None:
        raise not_found()
    if not stored.is_series:
        return [_render(store, stored.resource, True)] if _visible(stored, query) else []
    entries = list(_expanded(store, stored, query, now))
    if query.original_start:
        wanted = parse_rfc3339(query.original_start)
        entries = [e for e in entries if _original_instant(e, store.time_zone) == wanted]
    ordered = sorted(entries, key=lambda e: _start(e, store.time_zone))
    return [_render(store, e, query.show_deleted) for e in ordered]


def restrict_for_role(items: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """A freeBusyReader sees only when an event is, not what it is."""
    if role != "freeBusyReader":
        return items
    return [{k: item[k] for k in _FREE_BUSY_FIELDS if k in item} for item in items]


# -- full listings ---------------------------------------------------------------------------


def _listed(store: EventStore, stored: StoredEvent, query: EventsQuery) -> bool:
    resource = stored.resource
    if stored.parent_id:
        parent = store.events.get(stored.parent_id)
        if parent is None or (parent.cancelled and not query.show_deleted):
            return False
        if stored.cancelled:  # cancelled exceptions are listed even without showDeleted
            return _point_in_window(_original_instant(resource, store.time_zone), query)
    elif not _visible(stored, query):
        return False
    if stored.is_series:
        window = _series_window(store, stored, query)
    else:
        window = _in_window(resource, store.time_zone, query)
    return window and _matches_filters(resource, query)


def _expanded(
    store: EventStore, parent: StoredEvent, query: EventsQuery, now: datetime
) -> Iterator[dict[str, Any]]:
    """Instances of a series within the query window, exceptions applied."""
    if parent.cancelled and not query.show_deleted:
        return
    exceptions = {e.resource["id"]: e for e in store.exceptions(parent.resource["id"])}
    series = store.series(parent.resource)
    limits = store.expansion()
    until = query.time_max or series.horizon(now, limits.horizon_days)
    for occ in series.between(query.time_min, until, limits.max_instances):
        instance = render_instance(parent.resource, series, occ)
        if instance["id"] in exceptions:
            continue
        if parent.cancelled:
            instance["status"] = "cancelled"
        if _matches_filters(instance, query):
            yield instance
    for exception in exceptions.values():
        if exception.cancelled and not query.show_deleted:
            continue
        resource = exception.resource
        if _exception_in_window(resource, store.time_zone, query) and _matches_filters(
            resource, query
        ):
            yield resource


def _series_window(store: EventStore, stored: StoredEvent, query: EventsQuery) -> bool:
    if query.time_min is None and query.time_max is None:
        return True
    series = store.series(stored.resource)
    return bool(series.between(query.time_min, query.time_max, 1))


def _visible(stored: StoredEvent, query: EventsQuery) -> bool:
    if not stored.cancelled or query.show_deleted:
        return True
    # updatedMin: "entries deleted since this time will always be included".
    return query.updated_min is not None and _updated(stored.resource) >= query.updated_min


def _matches_filters(resource: dict[str, Any], query: EventsQuery) -> bool:
    if query.ical_uid and resource.get("iCalUID") != query.ical_uid:
        return False
    if query.updated_min and _updated(resource) < query.updated_min:
        return False
    if query.q and not _text_matches(resource, query.q):
        return False
    props = resource.get("extendedProperties") or {}
    for scope, wanted in (("private", query.private_props), ("shared", query.shared_props)):
        have = props.get(scope) or {}
        if any(have.get(key) != value for key, value in wanted):
            return False
    return _type_matches(resource, query)


def _type_matches(resource: dict[str, Any], query: EventsQuery) -> bool:
    return not query.event_types or resource.get("eventType", "default") in query.event_types


def _text_matches(resource: dict[str, Any], q: str) -> bool:
    people = [*(resource.get("attendees") or []), resource.get("organizer") or {}]
    haystack = " ".join(
        [str(resource.get(k) or "") for k in ("summary", "description", "location")]
        + [f"{p.get('displayName') or ''} {p.get('email') or ''}" for p in people]
    ).lower()
    return all(term in haystack for term in q.lower().split())


# -- incremental listings --------------------------------------------------------------------


def _changed_instances(
    store: EventStore, parent: StoredEvent, since: int, now: datetime
) -> Iterator[dict[str, Any]]:
    """A changed series, as instances: every current instance (cancelled ones if the series was
    deleted) plus the instances the change made vanish."""
    exceptions = {e.resource["id"] for e in store.exceptions(parent.resource["id"])}
    series = store.series(parent.resource)
    limits = store.expansion()
    until = series.horizon(now, limits.horizon_days)
    for occ in series.between(None, until, limits.max_instances):
        instance = render_instance(parent.resource, series, occ)
        if instance["id"] not in exceptions:
            if parent.cancelled:
                instance["status"] = "cancelled"
            yield instance
    for instance_id, (original, seq) in parent.retired.items():
        if seq > since:
            yield {
                "kind": "calendar#event",
                "etag": parent.resource["etag"],
                "id": instance_id,
                "status": "cancelled",
                "recurringEventId": parent.resource["id"],
                "originalStartTime": original,
            }


# -- shared helpers --------------------------------------------------------------------------


def _render(store: EventStore, resource: dict[str, Any], details: bool) -> dict[str, Any]:
    served = store.served(resource)
    if resource.get("status") == "cancelled" and not details:
        return {k: served[k] for k in _STUB_FIELDS if k in served}
    return served


def _ordered(
    entries: list[dict[str, Any]], query: EventsQuery, store: EventStore
) -> list[dict[str, Any]]:
    if query.order_by == "updated":
        return sorted(entries, key=_updated)
    if query.order_by == "startTime" or query.single_events:
        return sorted(entries, key=lambda e: (_start(e, store.time_zone), e["id"]))
    return entries


def _in_window(resource: dict[str, Any], tz: str, query: EventsQuery) -> bool:
    if query.time_min is None and query.time_max is None:
        return True
    if "start" not in resource or "end" not in resource:
        return _point_in_window(_original_instant(resource, tz), query)
    start, end = instant(resource["start"], tz), instant(resource["end"], tz)
    # timeMin bounds the end, timeMax the start, both exclusively.
    return (query.time_min is None or end > query.time_min) and (
        query.time_max is None or start < query.time_max
    )


def _exception_in_window(resource: dict[str, Any], tz: str, query: EventsQuery) -> bool:
    if resource.get("status") == "cancelled":
        return _point_in_window(_original_instant(resource, tz), query)
    return _in_window(resource, tz, query)


def _point_in_window(moment: datetime | None, query: EventsQuery) -> bool:
    if moment is None:
        return True
    return (query.time_min is None or moment >= query.time_min) and (
        query.time_max is None or moment < query.time_max
    )


def _original_instant(resource: dict[str, Any], tz: str) -> datetime | None:
    original = resource.get("originalStartTime")
    return instant(original, tz) if original else None


def _start(resource: dict[str, Any], tz: str) -> datetime:
    if "start" in resource:
        return instant(resource["start"], tz)
    return _original_instant(resource, tz) or datetime.min.replace(tzinfo=UTC)


def _updated(resource: dict[str, Any]) -> datetime:
    return parse_rfc3339(resource["updated"])
