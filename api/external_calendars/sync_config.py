"""A connection's sync configuration: defaults, its JSON view, checks, and what it means for the
connection's calendars (which import, which one receives the sessions).

It is stored in `Connection.sync_config` in Wix's shape (`listEventFromCalendars`,
`syncToCalendar`), next to calsync's own keys that `tasks.policy` reads (`privacy`,
`conflictPolicy` in lower case, `blockAllDayEvents`, `blockFreeEvents`) and, once made, the id
of the dedicated calendar (`dedicatedCalendarId`).
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from api.errors import bad_request, precondition
from api.external_calendars.catalog import Catalogued
from api.external_calendars.schema import (
    CalendarRef,
    CalendarRefs,
    ConflictPolicyValue,
    Empty,
    ListEventFromCalendarsConfig,
    ListEventFromCalendarsFeature,
    PrivacyMode,
    SyncConfig,
    SyncToCalendarConfig,
    SyncToCalendarFeature,
)
from models import ExternalCalendar

E = TypeVar("E", bound=StrEnum)
LIST, SYNC_TO = "listEventFromCalendars", "syncToCalendar"
DEDICATED_ID = "dedicatedCalendarId"
# Keys that change what copies look like or what blocks time: a change resyncs every calendar.
POLICY_KEYS = ("privacy", "conflictPolicy", "blockAllDayEvents", "blockFreeEvents")
_IMPORT_FIELD = f"syncConfig.{LIST}"
_EXPORT_FIELD = f"syncConfig.{SYNC_TO}"
# Each synced calendar runs, polls and reconciles on its own; the bound keeps what one account
# costs the workers in proportion.
MAX_SYNCED_CALENDARS = 25


@dataclass(frozen=True)
class Targets:
    """What a configuration asks of the calendar rows."""

    imports: frozenset[str]  # ExternalCalendar ids that block time on the schedule
    export: str | None  # the ExternalCalendar id that receives the sessions
    needs_dedicated: bool  # a dedicated calendar is wanted and not made yet


def default_config(by_oauth: bool, calendars: Sequence[ExternalCalendar]) -> dict[str, Any]:
    """An account connected by OAuth (Google, Microsoft): the primary calendar both ways. One
    connected by credentials (Apple, CalDAV): the primary calendar (else the first) blocks
    time; exporting waits for Update Sync Config."""
    base: dict[str, Any] = {"privacy": "full", "conflictPolicy": "origin_wins",
                            "blockAllDayEvents": False, "blockFreeEvents": False}  # fmt: skip
    if by_oauth:
        primary = {"enabled": True, "primaryCalendar": {}}
        return {**base, LIST: primary, SYNC_TO: dict(primary)}
    first = sorted(calendars, key=lambda c: (not c.is_primary, c.read_only, c.remote_id))[:1]
    chosen = [{"id": c.remote_id} for c in first]
    return {**base, LIST: {"enabled": bool(chosen), "calendars": {"calendars": chosen}},
            SYNC_TO: {"enabled": False}}  # fmt: skip


def targets(stored: dict[str, Any], calendars: Sequence[ExternalCalendar]) -> Targets:
    by_remote = {c.remote_id: c for c in calendars}
    primary = [c for c in calendars if c.is_primary]
    imports: set[str] = set()
    listing = stored.get(LIST) or {}
    if listing.get("enabled"):
        if "primaryCalendar" in listing:
            imports.update(c.id for c in primary)
        chosen = (listing.get("calendars") or {}).get("calendars") or []
        imports.update(by_remote[r["id"]].id for r in chosen if r.get("id") in by_remote)
    export, needs_dedicated = None, False
    sync_to = stored.get(SYNC_TO) or {}
    if sync_to.get("enabled"):
        if "primaryCalendar" in sync_to and primary:
            export = primary[0].id
        elif "calendar" in sync_to and sync_to["calendar"].get("id") in by_remote:
            export = by_remote[sync_to["calendar"]["id"]].id
        elif "dedicatedCalendar" in sync_to:
            dedicated = stored.get(DEDICATED_ID)
            present = any(c.id == dedicated for c in calendars)
            export, needs_dedicated = (dedicated, False) if present else (None, True)
    return Targets(frozenset(imports), export, needs_dedicated)


def config_out(stored: dict[str, Any], calendars: Sequence[ExternalCalendar]) -> SyncConfig:
    names = {c.remote_id: c.name for c in calendars}
    return SyncConfig(
        listEventFromCalendars=_listing_out(stored.get(LIST) or {}, names),
        syncToCalendar=_sync_to_out(stored.get(SYNC_TO) or {}, names),
        privacy=_upper(PrivacyMode, stored.get("privacy", "full")),
        conflictPolicy=_upper(ConflictPolicyValue, stored.get("conflictPolicy", "origin_wins")),
        blockAllDayEvents=bool(stored.get("blockAllDayEvents", False)),
        blockFreeEvents=bool(stored.get("blockFreeEvents", False)),
    )


def _upper(enum: type[E], value: object) -> E:
    """Stored in `sync.policy`'s lower case, shown in Wix's upper case."""
    return enum(str(value).upper())


def _listing_out(listing: dict[str, Any], names: dict[str, str | None]
                 ) -> ListEventFromCalendarsConfig:  # fmt: skip
    out = ListEventFromCalendarsConfig(enabled=bool(listing.get("enabled", False)))
    if "primaryCalendar" in listing:
        out.primaryCalendar = Empty()
    if "calendars" in listing:
        chosen = (listing.get("calendars") or {}).get("calendars") or []
        out.calendars = CalendarRefs(
            calendars=[CalendarRef(id=r["id"], name=names.get(r["id"])) for r in chosen]
        )
    return out


def _sync_to_out(sync_to: dict[str, Any], names: dict[str, str | None]) -> SyncToCalendarConfig:
    out = SyncToCalendarConfig(enabled=bool(sync_to.get("enabled", False)))
    if "primaryCalendar" in sync_to:
        out.primaryCalendar = Empty()
    if "dedicatedCalendar" in sync_to:
        out.dedicatedCalendar = Empty()
    if "calendar" in sync_to:
        remote = sync_to["calendar"]["id"]
        out.calendar = CalendarRef(id=remote, name=names.get(remote))
    return out


# What a field named in `fieldMask` and left out of `syncConfig` becomes (FieldMask semantics).
_MASK_DEFAULTS: dict[str, Any] = {
    LIST: {"enabled": False}, SYNC_TO: {"enabled": False}, "privacy": "FULL",
    "conflictPolicy": "ORIGIN_WINS", "blockAllDayEvents": False, "blockFreeEvents": False,
}  # fmt: skip


def masked(given: SyncConfig, paths: Sequence[str]) -> SyncConfig:
    """The part of `given` that `paths` name (`fieldMask.paths`, checked by the schema); the
    rest of `given` is ignored."""
    sent = given.model_dump(exclude_none=True)
    kept: dict[str, Any] = {}
    for path in paths:
        part, _, member = path.removeprefix("syncConfig.").partition(".")
        if not member:
            kept[part] = sent[part] if part in sent else deepcopy(_MASK_DEFAULTS[part])
            continue
        chosen = kept.setdefault(part, {})
        if member in sent.get(part, {}):
            chosen[member] = sent[part][member]
        elif member == "enabled":
            chosen[member] = False
    return SyncConfig.model_validate(kept)


def updated(
    stored: dict[str, Any], change: SyncConfig, entry: Catalogued,
    calendars: Sequence[ExternalCalendar],
) -> dict[str, Any]:  # fmt: skip
    """The stored configuration after `change` (a partial one: absent parts stay), checked
    against the provider's features and the account's calendars."""
    result = dict(stored)
    if change.listEventFromCalendars is not None:
        result[LIST] = _checked_listing(stored.get(LIST) or {}, change.listEventFromCalendars,
                                        entry, calendars)  # fmt: skip
    if change.syncToCalendar is not None:
        result[SYNC_TO] = _checked_sync_to(stored.get(SYNC_TO) or {}, change.syncToCalendar,
                                           entry, calendars)  # fmt: skip
    if change.privacy is not None:
        result["privacy"] = change.privacy.value.lower()
    if change.conflictPolicy is not None:
        result["conflictPolicy"] = change.conflictPolicy.value.lower()
    for key in ("blockAllDayEvents", "blockFreeEvents"):
        value = getattr(change, key)
        if value is not None:
            result[key] = value
    _within_limit(result, calendars)
    return result


def _within_limit(config: dict[str, Any], calendars: Sequence[ExternalCalendar]) -> None:
    wanted = targets(config, calendars)
    synced = set(wanted.imports)
    if wanted.export is not None:
        synced.add(wanted.export)
    if wanted.needs_dedicated:
        synced.add("a calendar yet to make")
    if len(synced) > MAX_SYNCED_CALENDARS:
        raise precondition(
            f"a connection syncs at most {MAX_SYNCED_CALENDARS} calendars (imports and the "
            "export target together)", "syncConfig",
        )  # fmt: skip


def _checked_listing(
    old: dict[str, Any], new: ListEventFromCalendarsConfig, entry: Catalogued,
    calendars: Sequence[ExternalCalendar],
) -> dict[str, Any]:  # fmt: skip
    members = {k: v for k, v in (("primaryCalendar", new.primaryCalendar),
                                 ("calendars", new.calendars)) if v is not None}  # fmt: skip
    if len(members) > 1:
        raise bad_request("give only one of primaryCalendar and calendars", _IMPORT_FIELD)
    enabled = new.enabled if new.enabled is not None else (bool(members) or old.get("enabled"))
    if not enabled:
        return {"enabled": False, **_kept_member(old, ("primaryCalendar", "calendars"))}
    feature = entry.features.listEventFromCalendars
    if feature is ListEventFromCalendarsFeature.NOT_SUPPORTED:
        raise precondition("this provider cannot import events", _IMPORT_FIELD)
    if not members:
        kept = _kept_member(old, ("primaryCalendar", "calendars"))
        if not kept:
            raise bad_request("name the calendars: primaryCalendar or calendars", _IMPORT_FIELD,
                              "CALENDAR_NOT_NAMED")  # fmt: skip
        return {"enabled": True, **kept}
    if new.primaryCalendar is not None:
        _need_primary(calendars, f"{_IMPORT_FIELD}.primaryCalendar")
        return {"enabled": True, "primaryCalendar": {}}
    assert new.calendars is not None
    field = f"{_IMPORT_FIELD}.calendars"
    if feature is ListEventFromCalendarsFeature.PRIMARY_CALENDAR_ONLY:
        raise precondition("this provider imports from the primary calendar only", field)
    known = {c.remote_id for c in calendars}
    for position, ref in enumerate(new.calendars.calendars):
        if ref.id not in known:
            raise bad_request("no such calendar in this account (see List Calendars)",
                              f"{field}.calendars[{position}].id", "UNKNOWN_CALENDAR")  # fmt: skip
    chosen = list(dict.fromkeys(ref.id for ref in new.calendars.calendars))
    return {"enabled": True, "calendars": {"calendars": [{"id": r} for r in chosen]}}


def _checked_sync_to(
    old: dict[str, Any], new: SyncToCalendarConfig, entry: Catalogued,
    calendars: Sequence[ExternalCalendar],
) -> dict[str, Any]:  # fmt: skip
    names = ("primaryCalendar", "dedicatedCalendar", "calendar")
    members = {k: getattr(new, k) for k in names if getattr(new, k) is not None}
    if len(members) > 1:
        raise bad_request("give only one of primaryCalendar, dedicatedCalendar and calendar",
                          _EXPORT_FIELD)  # fmt: skip
    enabled = new.enabled if new.enabled is not None else (bool(members) or old.get("enabled"))
    if not enabled:
        return {"enabled": False, **_kept_member(old, names)}
    feature = entry.features.syncToCalendar
    if feature is SyncToCalendarFeature.NOT_SUPPORTED:
        raise precondition("this provider cannot receive sessions", _EXPORT_FIELD)
    if not members:
        kept = _kept_member(old, names)
        if not kept:
            raise bad_request("name the calendar: primaryCalendar, dedicatedCalendar or calendar",
                              _EXPORT_FIELD, "CALENDAR_NOT_NAMED")  # fmt: skip
        members = kept
    name = next(iter(members))
    field = f"{_EXPORT_FIELD}.{name}"
    if feature is SyncToCalendarFeature.PRIMARY_CALENDAR_ONLY and name != "primaryCalendar":
        raise precondition("this provider receives sessions in the primary calendar only", field)
    if name == "primaryCalendar":
        _writable(_need_primary(calendars, field), field)
        return {"enabled": True, "primaryCalendar": {}}
    if name == "dedicatedCalendar":
        if not entry.entry.capabilities.dedicated_calendar:
            raise precondition("this provider cannot make a calendar of its own", field)
        return {"enabled": True, "dedicatedCalendar": {}}
    remote = new.calendar.id if new.calendar is not None else old["calendar"]["id"]
    chosen = next((c for c in calendars if c.remote_id == remote), None)
    if chosen is None:
        raise bad_request("no such calendar in this account (see List Calendars)", f"{field}.id",
                          "UNKNOWN_CALENDAR")  # fmt: skip
    _writable(chosen, f"{field}.id")
    return {"enabled": True, "calendar": {"id": remote}}


def _kept_member(old: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    return {name: old[name] for name in names if name in old}


def _need_primary(calendars: Sequence[ExternalCalendar], field: str) -> ExternalCalendar:
    primary = next((c for c in calendars if c.is_primary), None)
    if primary is None:
        raise precondition("this account has no primary calendar; name the calendars", field)
    return primary


def _writable(calendar: ExternalCalendar, field: str) -> None:
    if calendar.read_only:
        raise bad_request("this calendar is read-only and cannot receive sessions", field,
                          "CALENDAR_READ_ONLY")  # fmt: skip
