"""In-memory mailboxes, calendars, events and subscriptions of the Graph sandbox.

One `GraphState` is shared by every route and by tests; an RLock makes it thread-safe and a
`SandboxClock` (real time plus an offset tests can move) makes expiry testable without sleeping.
Every change to an event bumps the mailbox's sequence number (for delta) and is handed to the
notifier (for change notifications).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import ids
from .delta import DeltaStore
from .errors import GraphError, access_denied, bad_request, not_found
from .faults import Faults
from .notify import Notifier
from .oauth import IdentityStore
from .recurrence import Recurrence, occurrence_dates, parse_recurrence
from .zones import local_midnight, parse_dttz, resolve_zone

CONTENT_FIELDS = {
    "subject", "body", "location", "locations", "showAs", "importance", "sensitivity",
    "categories", "isReminderOn", "reminderMinutesBeforeStart", "responseRequested", "attendees",
    "isOnlineMeeting", "onlineMeetingProvider", "allowNewTimeProposals", "hideAttendees",
}  # fmt: skip
STRUCTURE_FIELDS = {
    "start", "end", "isAllDay", "recurrence", "transactionId", "singleValueExtendedProperties",
}  # fmt: skip
# Sent back by clients that PATCH what they read (O365 sends some of them); Graph ignores these.
READ_ONLY_FIELDS = {
    "id", "changeKey", "createdDateTime", "lastModifiedDateTime", "iCalUId", "uid", "type",
    "seriesMasterId", "originalStart", "bodyPreview", "webLink", "organizer", "isOrganizer",
    "responseStatus", "hasAttachments", "isCancelled", "isDraft", "originalStartTimeZone",
    "originalEndTimeZone", "onlineMeeting", "onlineMeetingUrl", "attachments", "calendar",
}  # fmt: skip
# What an event may be served without (a fault): any property but its id.
SERVED_FIELDS = (CONTENT_FIELDS | STRUCTURE_FIELDS | READ_ONLY_FIELDS) - {"id"} | {"@odata.etag"}
ENUMS = {
    "showAs": {"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"},
    "importance": {"low", "normal", "high"},
    "sensitivity": {"normal", "personal", "private", "confidential"},
}


class SandboxClock:
    """Wall-clock UTC plus an offset that tests move with `advance`; can be frozen."""

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._offset = timedelta(0) if start is None else start - datetime.now(UTC)
        self._frozen_at: datetime | None = (start or datetime.now(UTC)) if frozen else None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return datetime.now(UTC) + self._offset

    def advance(self, by: float | timedelta) -> datetime:
        step = by if isinstance(by, timedelta) else timedelta(seconds=by)
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += step
            self._offset += step
        return self.now()


@dataclass
class GraphSettings:
    """Knobs of the emulation; defaults are Graph's documented limits where it gives any."""

    subscription_max_minutes: int = 10_080
    max_subscriptions_per_mailbox: int = 1_000
    validation_timeout: float = 10.0
    notification_timeout: float = 3.0
    notification_retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    notification_max_age: timedelta = timedelta(hours=4)
    delta_page_size: int = 10
    delta_token_ttl: timedelta | None = None  # None: tokens expire only when told or evicted
    delta_expiry: str = "gone"  # "gone" -> 410 + Location; "syncStateNotFound" -> 400
    delta_max_tokens: int = 1_000  # per mailbox; older ones expire (Outlook: cache-size bound)
    list_page_size: int = 10
    access_token_lifetime: int = 3_599
    require_auth: bool = True
    # A POST repeating a transactionId: "return" answers 201 with the first event; "conflict"
    # answers 409 (docs silent on which Graph does; clients should cope with both).
    duplicate_transaction: str = "return"


@dataclass
class User:
    id: str
    upn: str
    display_name: str
    time_zone: str = "UTC"


@dataclass
class CalendarRecord:
    id: str
    name: str
    can_edit: bool
    is_default: bool
    change_key: str
    color: str = "auto"


@dataclass
class Override:
    """One instance of a series that differs from the pattern: an exception, or cancelled."""

    original_start: datetime
    cancelled: bool = False
    content: dict[str, Any] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None
    start_tz: str | None = None
    end_tz: str | None = None
    is_all_day: bool | None = None
    ext_props: dict[str, str] = field(default_factory=dict)
    change_key: str = field(default_factory=ids.change_key)
    created: datetime | None = None
    modified: datetime | None = None
    dropped: tuple[str, ...] = ()  # a fault: properties left out when it is served


ANSWERS = ("accepted", "tentativelyAccepted", "declined")  # an invitee's `responseStatus`


@dataclass
class Invitation:
    """The event is a meeting someone else organizes; the mailbox owner is invited to it."""

    organizer: dict[str, str]  # an emailAddress: name and address
    response: str = "notResponded"
    answered: datetime | None = None


@dataclass
class EventRecord:
    """A stored item: a single event or a series master (whose overrides hold its exceptions)."""

    id: str
    calendar_id: str
    content: dict[str, Any]
    start: datetime
    end: datetime
    start_tz: str
    end_tz: str
    is_all_day: bool
    created: datetime
    modified: datetime
    ical_uid: str = field(default_factory=ids.ical_uid)
    change_key: str = field(default_factory=ids.change_key)
    transaction_id: str | None = None
    recurrence: Recurrence | None = None
    ext_props: dict[str, str] = field(default_factory=dict)
    overrides: dict[datetime, Override] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()  # a fault: properties left out when it is served
    invitation: Invitation | None = None  # None: the mailbox owner organizes it


@dataclass(frozen=True)
class Instance:
    """What a client sees: a single event, a series master, or one occurrence/exception of it."""

    id: str
    kind: str  # singleInstance | seriesMaster | occurrence | exception
    record: EventRecord
    override: Override | None
    original_start: datetime | None
    start: datetime
    end: datetime

    @property
    def change_key(self) -> str:
        return self.override.change_key if self.override else self.record.change_key

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'

    @property
    def content(self) -> dict[str, Any]:
        return {**self.record.content, **(self.override.content if self.override else {})}

    @property
    def ext_props(self) -> dict[str, str]:
        return {**self.record.ext_props, **(self.override.ext_props if self.override else {})}

    @property
    def is_all_day(self) -> bool:
        if self.override and self.override.is_all_day is not None:
            return self.override.is_all_day
        return self.record.is_all_day

    @property
    def dropped(self) -> tuple[str, ...]:
        """Properties a fault leaves out: the master's own are not its occurrences'."""
        if self.override is not None:
            return self.override.dropped
        return self.record.dropped if self.original_start is None else ()

    @property
    def zones(self) -> tuple[str, str]:
        if self.override and self.override.start_tz:
            return self.override.start_tz, self.override.end_tz or self.override.start_tz
        return self.record.start_tz, self.record.end_tz


@dataclass
class Mailbox:
    user: User
    calendars: dict[str, CalendarRecord] = field(default_factory=dict)
    events: dict[str, EventRecord] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    touched: dict[str, int] = field(default_factory=dict)  # instance id -> seq of last change

    def default_calendar(self) -> CalendarRecord:
        return next(c for c in self.calendars.values() if c.is_default)


@dataclass
class SubscriptionRecord:
    id: str
    user_id: str
    resource: str
    change_types: frozenset[str]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expiration: datetime
    application_id: str
    creator_id: str
    tls_version: str = "v1_2"
    paused: bool = False  # after reauthorizationRequired when told to pause: changes are lost
    needs_reauthorization: bool = False


class GraphState:
    """Everything the Graph sandbox knows. Methods raise `GraphError` with Graph's codes."""

    def __init__(
        self,
        settings: GraphSettings | None = None,
        *,
        clock: SandboxClock | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self.settings = settings or GraphSettings()
        self.clock = clock or SandboxClock()
        self.tenant_id = tenant_id or ids.guid()
        self.lock = threading.RLock()
        self.mailboxes: dict[str, Mailbox] = {}
        self.subscriptions: dict[str, SubscriptionRecord] = {}
        self.faults = Faults(self.clock.now)
        self.identity = IdentityStore(self)
        self.notifier = Notifier(self)
        self.delta = DeltaStore(self)

    def now(self) -> datetime:
        return self.clock.now()

    def close(self) -> None:
        """Stop the notification thread (tests call this on teardown)."""
        self.notifier.stop()

    # ---- users and calendars -------------------------------------------------------------

    def add_user(
        self,
        upn: str,
        display_name: str | None = None,
        *,
        user_id: str | None = None,
        time_zone: str = "UTC",
    ) -> User:
        """A mailbox with a default, writable calendar named "Calendar"."""
        resolve_zone(time_zone)
        user = User(user_id or ids.guid(), upn, display_name or upn.split("@")[0], time_zone)
        with self.lock:
            if self._find_user(upn) or self._find_user(user.id):
                raise bad_request(f"user {upn} exists")
            self.mailboxes[user.id] = Mailbox(user)
            self.add_calendar(user.id, "Calendar", is_default=True)
        return user

    def add_calendar(
        self,
        user: str,
        name: str,
        *,
        can_edit: bool = True,
        is_default: bool = False,
        calendar_id: str | None = None,
    ) -> CalendarRecord:
        with self.lock:
            box = self.mailbox(user)
            cal = CalendarRecord(
                calendar_id or ids.item_id(), name, can_edit, False, ids.change_key()
            )
            if is_default:
                for other in box.calendars.values():
                    other.is_default = False
                cal.is_default = True
            box.calendars[cal.id] = cal
            return cal

    def set_calendar_access(self, user: str, calendar_id: str, *, can_edit: bool) -> None:
        with self.lock:
            self.calendar(user, calendar_id).can_edit = can_edit

    def rename_calendar(self, user: str, calendar_id: str, name: str) -> None:
        with self.lock:
            cal = self.calendar(user, calendar_id)
            cal.name, cal.change_key = name, ids.change_key()

    def remove_calendar(self, user: str, calendar_id: str) -> None:
        """The owner deletes a calendar in Outlook, its events with it; the default calendar
        cannot go."""
        with self.lock:
            box = self.mailbox(user)
            if self.calendar(user, calendar_id).is_default:
                raise bad_request("The default calendar cannot be deleted.")
            del box.calendars[calendar_id]
            for event_id in [e.id for e in box.events.values() if e.calendar_id == calendar_id]:
                del box.events[event_id]

    def mailbox(self, user: str) -> Mailbox:
        """By user id or userPrincipalName (case-insensitive), as `/users/{id}` accepts both."""
        with self.lock:
            found = self._find_user(user)
            if found is None:
                raise GraphError(
                    404, "ErrorInvalidUser", f"The requested user '{user}' is invalid."
                )
            return found

    def _find_user(self, ref: str) -> Mailbox | None:
        if ref in self.mailboxes:
            return self.mailboxes[ref]
        lowered = ref.lower()
        return next((b for b in self.mailboxes.values() if b.user.upn.lower() == lowered), None)

    def users(self) -> list[User]:
        with self.lock:
            return [b.user for b in self.mailboxes.values()]

    def calendar(self, user: str, calendar_id: str | None) -> CalendarRecord:
        box = self.mailbox(user)
        if calendar_id is None:
            return box.default_calendar()
        cal = box.calendars.get(calendar_id)
        if cal is None:
            raise not_found("The specified calendar was not found.")
        return cal

    # ---- reading events ----------------------------------------------------------------------

    def get_instance(self, user: str, event_id: str) -> Instance:
        with self.lock:
            box = self.mailbox(user)
            record = box.events.get(event_id)
            if record is not None:
                return self._stored_instance(record)
            parsed = ids.parse_occurrence_id(event_id)
            master = box.events.get(parsed[0]) if parsed else None
            if parsed is None or master is None or master.recurrence is None:
                raise not_found()
            instance = self._occurrence(master, parsed[1])
            if instance is None:
                raise not_found()
            return instance

    def list_events(self, user: str, calendar_id: str | None) -> list[Instance]:
        """Single events and series masters, as `/events` lists them (no occurrences)."""
        with self.lock:
            cal = self.calendar(user, calendar_id)
            box = self.mailbox(user)
            records = [r for r in box.events.values() if r.calendar_id == cal.id]
            return [self._stored_instance(r) for r in records]

    def calendar_view(
        self, user: str, calendar_id: str | None, start: datetime, end: datetime
    ) -> list[Instance]:
        """Single events, occurrences and exceptions overlapping [start, end), by start."""
        with self.lock:
            cal = self.calendar(user, calendar_id)
            found: list[Instance] = []
            for record in self.mailbox(user).events.values():
                if record.calendar_id != cal.id:
                    continue
                if record.recurrence is None:
                    if _overlaps(record.start, record.end, start, end):
                        found.append(self._stored_instance(record))
                else:
                    found.extend(self._expand(record, start, end))
            return sorted(found, key=lambda i: (i.start, i.id))

    def instances(
        self, user: str, master_id: str, start: datetime, end: datetime
    ) -> list[Instance]:
        with self.lock:
            master = self.mailbox(user).events.get(master_id)
            if master is None:
                raise not_found()
            if master.recurrence is None:
                raise bad_request("The event is not a recurring series master.")
            return sorted(self._expand(master, start, end), key=lambda i: (i.start, i.id))

    def _stored_instance(self, record: EventRecord) -> Instance:
        kind = "seriesMaster" if record.recurrence else "singleInstance"
        return Instance(record.id, kind, record, None, None, record.start, record.end)

    def _series_shape(self, master: EventRecord) -> tuple[timedelta, timedelta, str]:
        """(wall-clock start after local midnight, duration, zone) of each occurrence."""
        assert master.recurrence is not None
        zone = master.recurrence.zone
        local = master.start.astimezone(resolve_zone(zone))
        wall = timedelta(hours=local.hour, minutes=local.minute, seconds=local.second)
        return wall, master.end - master.start, zone

    def _expand(self, master: EventRecord, start: datetime, end: datetime) -> list[Instance]:
        assert master.recurrence is not None
        wall, duration, zone = self._series_shape(master)
        until = end.astimezone(resolve_zone(zone)).date() + timedelta(days=1)
        found: list[Instance] = []
        for day in occurrence_dates(master.recurrence, until):
            original = _at(day, wall, zone)
            if original in master.overrides:
                continue
            if _overlaps(original, original + duration, start, end):
                found.append(self._make_occurrence(master, original, duration))
        for override in master.overrides.values():
            instance = None if override.cancelled else self._exception(master, override)
            if instance and _overlaps(instance.start, instance.end, start, end):
                found.append(instance)
        return found

    def _occurrence(self, master: EventRecord, original: datetime) -> Instance | None:
        override = master.overrides.get(original)
        if override is not None:
            return None if override.cancelled else self._exception(master, override)
        if not self._is_original_start(master, original):
            return None
        return self._make_occurrence(master, original, self._series_shape(master)[1])

    def _is_original_start(self, master: EventRecord, original: datetime) -> bool:
        assert master.recurrence is not None
        wall, _, zone = self._series_shape(master)
        day = original.astimezone(resolve_zone(zone)).date()
        return any(_at(d, wall, zone) == original for d in occurrence_dates(master.recurrence, day))

    def _make_occurrence(
        self, master: EventRecord, original: datetime, length: timedelta
    ) -> Instance:
        occ = ids.occurrence_id(master.id, original)
        return Instance(occ, "occurrence", master, None, original, original, original + length)

    def _exception(self, master: EventRecord, override: Override) -> Instance:
        length = master.end - master.start
        start = override.start or override.original_start
        end = override.end or (start + length)
        occ = ids.occurrence_id(master.id, override.original_start)
        return Instance(occ, "exception", master, override, override.original_start, start, end)

    # ---- writing events ----------------------------------------------------------------------

    def create_event(
        self,
        user: str,
        body: dict[str, Any],
        *,
        calendar_id: str | None = None,
        check_access: bool = True,
    ) -> tuple[Instance, bool]:
        """POST an event. Returns (instance, created); created is False for a transactionId
        retry, which returns the event the first POST made instead of a second copy."""
        _check_fields(body)
        with self.lock:
            box = self.mailbox(user)
            cal = self.calendar(user, calendar_id)
            txn = body.get("transactionId")
            if txn and txn in box.transactions and box.transactions[txn] in box.events:
                return self._stored_instance(box.events[box.transactions[txn]]), False
            if check_access and not cal.can_edit:
                raise access_denied()
            record = self._new_record(cal.id, body)
            box.events[record.id] = record
            if txn:
                box.transactions[txn] = record.id
            self._record_change(box, "created", record.id, [record.id])
            return self._stored_instance(record), True

    def _new_record(self, calendar_id: str, body: dict[str, Any]) -> EventRecord:
        if "start" not in body or "end" not in body:
            raise bad_request("An event needs both start and end.")
        start, start_tz = parse_dttz(body["start"], "start")
        end, end_tz = parse_dttz(body["end"], "end")
        now = self.now()
        record = EventRecord(
            id=ids.item_id(),
            calendar_id=calendar_id,
            content=_content(body),
            start=start,
            end=end,
            start_tz=start_tz,
            end_tz=end_tz,
            is_all_day=bool(body.get("isAllDay", False)),
            created=now,
            modified=now,
            transaction_id=body.get("transactionId"),
            ext_props=_ext_props(body.get("singleValueExtendedProperties")),
        )
        _check_times(record.start, record.end, record.is_all_day, start_tz, end_tz)
        if body.get("recurrence"):
            record.recurrence = parse_recurrence(body["recurrence"], start_tz)
            self._align_series(record)
        return record

    def _align_series(self, record: EventRecord) -> None:
        """Graph moves a master's start onto the first occurrence of its pattern."""
        assert record.recurrence is not None
        wall, duration, zone = self._series_shape(record)
        first = next(occurrence_dates(record.recurrence, date.max), None)
        if first is None:
            raise bad_request("The recurrence pattern produces no occurrence.")
        record.start = _at(first, wall, zone)
        record.end = record.start + duration

    def update_event(
        self,
        user: str,
        event_id: str,
        patch: dict[str, Any],
        *,
        if_match: str | None = None,
        check_access: bool = True,
    ) -> Instance:
        _check_fields(patch)
        with self.lock:
            box = self.mailbox(user)
            instance = self.get_instance(user, event_id)
            self._check_write(box, instance, if_match, check_access)
            if instance.kind in ("occurrence", "exception"):
                return self._update_instance(box, instance, patch)
            record = self._patched(instance.record, patch)  # validated before anything changes
            record.change_key, record.modified = ids.change_key(), self.now()
            box.events[record.id] = record
            self._record_change(box, "updated", record.id, self._touched_ids(record))
            return self._stored_instance(record)

    def _patched(self, current: EventRecord, patch: dict[str, Any]) -> EventRecord:
        """A patched copy of `current`; raises before touching the stored record."""
        if patch.get("transactionId") not in (None, current.transaction_id):
            raise bad_request("transactionId cannot be changed after the event was created.")
        record = copy.deepcopy(current)
        record.content.update(_content(patch))
        record.ext_props.update(_ext_props(patch.get("singleValueExtendedProperties")))
        if "start" in patch:
            record.start, record.start_tz = parse_dttz(patch["start"], "start")
        if "end" in patch:
            record.end, record.end_tz = parse_dttz(patch["end"], "end")
        record.is_all_day = bool(patch.get("isAllDay", current.is_all_day))
        _check_times(record.start, record.end, record.is_all_day, record.start_tz, record.end_tz)
        reshaped = (record.start, record.end, record.is_all_day) != (
            current.start,
            current.end,
            current.is_all_day,
        )
        if "recurrence" in patch:
            raw = patch["recurrence"]
            record.recurrence = parse_recurrence(raw, record.start_tz) if raw else None
            reshaped = True
        if reshaped and record.recurrence is not None:
            record.overrides.clear()  # a new pattern or time drops the exceptions, as Outlook does
            self._align_series(record)
        return record

    def _update_instance(self, box: Mailbox, instance: Instance, patch: dict[str, Any]) -> Instance:
        """Editing an occurrence turns it into an exception (same id, own changeKey)."""
        if patch.get("recurrence"):
            raise bad_request("An occurrence or exception cannot have a recurrence.")
        master, now = instance.record, self.now()
        assert instance.original_start is not None
        start_tz, end_tz = instance.zones
        start, end = instance.start, instance.end
        if "start" in patch:
            start, start_tz = parse_dttz(patch["start"], "start")
        if "end" in patch:
            end, end_tz = parse_dttz(patch["end"], "end")
        all_day = bool(patch.get("isAllDay", instance.is_all_day))
        _check_times(start, end, all_day, start_tz, end_tz)
        content, props = _content(patch), _ext_props(patch.get("singleValueExtendedProperties"))
        override = master.overrides.get(instance.original_start) or Override(
            instance.original_start, created=now
        )
        override.content.update(content)
        override.ext_props.update(props)
        override.start, override.end, override.start_tz, override.end_tz = (
            start,
            end,
            start_tz,
            end_tz,
        )
        override.is_all_day = all_day
        override.change_key, override.modified = ids.change_key(), now
        master.overrides[instance.original_start] = override
        master.change_key, master.modified = ids.change_key(), now
        self._record_change(box, "updated", instance.id, [instance.id], also=[master.id])
        return self._exception(master, override)

    def delete_event(
        self,
        user: str,
        event_id: str,
        *,
        if_match: str | None = None,
        check_access: bool = True,
    ) -> None:
        """Delete an event or a whole series; deleting an occurrence cancels that instance."""
        with self.lock:
            box = self.mailbox(user)
            instance = self.get_instance(user, event_id)
            self._check_write(box, instance, if_match, check_access)
            record = instance.record
            if instance.original_start is not None:
                record.overrides[instance.original_start] = Override(
                    instance.original_start, cancelled=True, created=self.now()
                )
                record.change_key, record.modified = ids.change_key(), self.now()
                self._record_change(box, "deleted", instance.id, [instance.id], also=[record.id])
                return
            gone = self._touched_ids(record)
            del box.events[record.id]
            if record.transaction_id and box.transactions.get(record.transaction_id) == record.id:
                del box.transactions[record.transaction_id]
            self._record_change(box, "deleted", record.id, gone)

    def damage_event(self, user: str, event_id: str, drop: list[str]) -> Instance:
        """A fault: the event is served without the properties in `drop` until it is damaged
        with `drop=[]`. Either is a change (new changeKey, delta, notification); an occurrence
        becomes an exception, as any change of one does."""
        unknown = sorted(set(drop) - SERVED_FIELDS)
        if unknown:
            raise bad_request(f"drop: {unknown[0]!r} is not a property the sandbox serves")
        with self.lock:
            box = self.mailbox(user)
            instance = self.get_instance(user, event_id)
            record, now = instance.record, self.now()
            if instance.original_start is None:
                record.dropped = tuple(drop)
                record.change_key, record.modified = ids.change_key(), now
                self._record_change(box, "updated", record.id, self._touched_ids(record))
                return self._stored_instance(record)
            override = instance.override or Override(instance.original_start, created=now)
            override.dropped = tuple(drop)
            override.change_key, override.modified = ids.change_key(), now
            record.overrides[instance.original_start] = override
            record.change_key, record.modified = ids.change_key(), now
            self._record_change(box, "updated", instance.id, [instance.id], also=[record.id])
            return self._exception(record, override)

    def invite(self, user: str, body: dict[str, Any], organizer: dict[str, str]) -> Instance:
        """A meeting `organizer` sent lands in the mailbox's default calendar, unanswered."""
        if not organizer.get("address"):
            raise bad_request("organizer: an emailAddress with an address is required")
        with self.lock:
            instance, _ = self.create_event(user, body, check_access=False)
            instance.record.invitation = Invitation(dict(organizer))
            return instance

    def respond(self, user: str, event_id: str, response: str) -> Instance:
        """The owner answers an invitation in Outlook (the answer covers the whole series) and
        keeps it on the calendar. A change like any other: changeKey, delta, notification."""
        if response not in ANSWERS:
            raise bad_request(f"response must be one of {', '.join(ANSWERS)}")
        with self.lock:
            box = self.mailbox(user)
            record = self.get_instance(user, event_id).record
            if record.invitation is None:
                raise bad_request("You can't respond to a meeting you organize.")
            now = self.now()
            record.invitation.response, record.invitation.answered = response, now
            record.change_key, record.modified = ids.change_key(), now
            for override in record.overrides.values():
                override.change_key, override.modified = ids.change_key(), now
            self._record_change(box, "updated", record.id, self._touched_ids(record))
            return self._stored_instance(record)

    def _check_write(
        self, box: Mailbox, instance: Instance, if_match: str | None, check_access: bool
    ) -> None:
        if check_access and not box.calendars[instance.record.calendar_id].can_edit:
            raise access_denied()
        if if_match is not None and not etag_matches(if_match, instance.change_key):
            raise GraphError(
                412,
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the change key "
                "passed in the request does not match the current change key for the item.",
                inner_code="entityTagDoesNotMatch",
            )

    def _touched_ids(self, record: EventRecord) -> list[str]:
        """Ids whose change a delta round reports even outside its window.

        Series changes are seen through their occurrences' changeKeys inside the window; the
        master id itself never appears in a calendar view, so it is not reported."""
        return [] if record.recurrence else [record.id]

    def _record_change(
        self,
        box: Mailbox,
        change_type: str,
        event_id: str,
        instance_ids: Iterable[str],
        also: Iterable[str] = (),
    ) -> None:
        box.seq += 1
        for touched in instance_ids:
            box.touched[touched] = box.seq
        self.notifier.event_changed(box.user.id, change_type, event_id)
        for other in also:
            self.notifier.event_changed(box.user.id, "updated", other)

    # ---- subscriptions (HTTP rules live in subscriptions.py) --------------------------------

    def active_subscriptions(self, user_id: str | None = None) -> list[SubscriptionRecord]:
        """Subscriptions not yet expired; expired ones are removed, as Graph does."""
        with self.lock:
            now = self.now()
            for sub_id in [s.id for s in self.subscriptions.values() if s.expiration <= now]:
                del self.subscriptions[sub_id]
            subs = list(self.subscriptions.values())
            return [s for s in subs if user_id is None or s.user_id == user_id]

    def subscription(self, sub_id: str) -> SubscriptionRecord:
        found = next((s for s in self.active_subscriptions() if s.id == sub_id), None)
        if found is None:
            raise GraphError(404, "ResourceNotFound", f"The object was not found: {sub_id}")
        return found

    def send_lifecycle_event(self, sub_id: str, event: str, *, pause: bool = False) -> None:
        """Deliver `reauthorizationRequired`, `subscriptionRemoved` (removes it) or `missed`.

        With `pause=True` a reauthorizationRequired also pauses change delivery until the client
        reauthorizes or renews; changes made meanwhile are not notified."""
        if event not in ("reauthorizationRequired", "subscriptionRemoved", "missed"):
            raise bad_request(f"unknown lifecycle event {event!r}")
        with self.lock:
            sub = self.subscription(sub_id)
            if sub.lifecycle_url is None:
                raise bad_request("the subscription has no lifecycleNotificationUrl")
            if event == "reauthorizationRequired":
                sub.needs_reauthorization, sub.paused = True, pause
            if event == "subscriptionRemoved":
                del self.subscriptions[sub.id]
            self.notifier.lifecycle(sub, event)

    def expire_delta_tokens(self, user: str | None = None) -> int:
        """Make every delta (and skip) token issued so far expired; returns how many."""
        return self.delta.expire_all(None if user is None else self.mailbox(user).user.id)


def etag_matches(if_match: str, change_key: str) -> bool:
    wanted = [t.strip() for t in if_match.split(",")]
    if "*" in wanted:
        return True
    for tag in wanted:
        if not tag.removeprefix("W/").startswith('"'):
            raise GraphError(
                400, "BadRequest", "ETags must be quoted strings", inner_code="malformedEntityTag"
            )
    return any(t.removeprefix("W/").strip('"') == change_key for t in wanted)


def _at(day: date, wall: timedelta, zone: str) -> datetime:
    naive = datetime(day.year, day.month, day.day) + wall
    return naive.replace(tzinfo=resolve_zone(zone)).astimezone(UTC)


def _overlaps(start: datetime, end: datetime, lo: datetime, hi: datetime) -> bool:
    if start == end:
        return lo <= start < hi
    return start < hi and end > lo


def _check_fields(body: Any) -> None:
    if not isinstance(body, dict):
        raise GraphError(400, "RequestBodyRead", "The request body must be a JSON object.")
    for key in body:
        if key.startswith("@odata") or key in CONTENT_FIELDS | STRUCTURE_FIELDS | READ_ONLY_FIELDS:
            continue
        raise GraphError(
            400,
            "RequestBodyRead",
            f"The property '{key}' does not exist on type 'microsoft.graph.event'. Make sure to "
            "only use property names that are defined by the type or mark the type as open type.",
        )
    for key, allowed in ENUMS.items():
        if key in body and body[key] not in allowed:
            raise GraphError(
                400, "RequestBodyRead", f"Cannot convert the literal '{body[key]}' for {key}."
            )


def _content(body: dict[str, Any]) -> dict[str, Any]:
    content = {k: v for k, v in body.items() if k in CONTENT_FIELDS}
    if "body" in content:
        raw = content["body"] or {}
        kind = str(raw.get("contentType") or "text").lower()
        if kind not in ("text", "html"):
            raise GraphError(400, "RequestBodyRead", f"Cannot convert the literal '{kind}'.")
        content["body"] = {"contentType": kind, "content": raw.get("content") or ""}
    if "location" in content and not isinstance(content["location"], dict):
        content["location"] = {"displayName": str(content["location"] or "")}
    return content


def _ext_props(raw: Any) -> dict[str, str]:
    """singleValueExtendedProperties -> {id: value}; values are strings in Graph."""
    found: dict[str, str] = {}
    for prop in raw or []:
        if not isinstance(prop, dict) or not isinstance(prop.get("id"), str) or "value" not in prop:
            raise bad_request("Each singleValueExtendedProperty needs an id and a value.")
        parts = prop["id"].split(" ", 3)
        if len(parts) != 4 or parts[2] not in ("Name", "Id") or not parts[1].startswith("{"):
            raise bad_request(f"Invalid extended property id {prop['id']!r}.")
        value = prop["value"]
        found[prop["id"]] = str(value).lower() if isinstance(value, bool) else str(value)
    return found


def _check_times(start: datetime, end: datetime, all_day: bool, start_tz: str, end_tz: str) -> None:
    if end < start:
        raise bad_request("The event's end must not be before its start.")
    if all_day and not (
        local_midnight(start, start_tz) and local_midnight(end, end_tz) and end > start
    ):
        raise bad_request(
            "An all-day event must start and end at midnight of its time zone and last at "
            "least one day.",
            "ErrorPropertyValidationFailure",
        )
