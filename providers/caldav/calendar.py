"""One CalDAV calendar collection behind `providers.base.CalendarProvider`.

Reading: see `caldav_changes` (RFC 6578 sync-collection, or CTag and ETags) and `caldav_items`
(what each resource lists as). `get` of an id that was never there answers a tombstone too:
a CalDAV server cannot tell "deleted" from "never existed".

Writes (RFC 4791 5.3.2): a create PUTs `<uid>.ics`, its UID derived from the idempotency key,
with `If-None-Match: *`; when that href or that UID is already there, the event found is
returned (the caller reconciles its content). Updates and deletes send `If-Match`; 412 ->
`PreconditionFailed`; a delete of a missing event is done. Writing one slot of a recurring
resource (an exception of our series, an occurrence of anyone's) rewrites the resource: its
RECURRENCE-ID override, or an EXDATE for a cancelled occurrence of ours or a deleted one of
someone else's series.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from providers.base import ChangePage, SyncWindow
from providers.caldav.collection import Collection
from providers.caldav.cursor import CTAG, SYNC, Cursor
from providers.caldav.events import (
    UnreadableEvent,
    fill,
    moment_key,
    new_calendar,
    new_vevent,
    set_rule,
)
from providers.caldav.items import COMPONENT_VERSION, Resource, item_id, split_id
from providers.caldav.listing import changes_since, full_listing
from providers.errors import (
    AlreadyExists,
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
)
from sync.event import CanonicalEvent, as_instant
from sync.snapshot import RemoteEvent


class CalDAVCalendar:
    """One CalDAV calendar collection (see the module doc)."""

    def __init__(
        self,
        collection: Collection,
        window: SyncWindow,
        read_only: bool = False,
        sync_collection: bool | None = None,
    ) -> None:
        self.collection = collection
        self.window = window
        self._read_only = read_only
        self._sync_collection = sync_collection

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def write_concurrency(self) -> int:
        """Writes a run may send at once (`tasks.waves`): the per-server request limit."""
        return self.collection.client.max_concurrent

    @property
    def url(self) -> str:
        return self.collection.url

    # -- reading --------------------------------------------------------------------------

    def list_changes(self, cursor: str | None) -> ChangePage:
        if cursor is None:
            return full_listing(self.collection, self.window, self._mode())
        return changes_since(self.collection, Cursor.decode(cursor), self.window)

    def list_window(self, start: datetime, end: datetime) -> list[RemoteEvent]:
        window = SyncWindow(start, end)
        page = full_listing(self.collection, window, self._mode())
        return [item for item in page.changes if _within(item, window)]

    def get(self, event_id: str) -> RemoteEvent:
        name, key = split_id(event_id)
        resource = self.collection.fetch(name)
        why = self.collection.unreadable.get(name)
        if resource is None and why is not None:
            return RemoteEvent.unread(event_id, why)
        try:
            item = None if resource is None else resource.item(key)
        except ValueError as unreadable:  # values no event can have
            return RemoteEvent.unread(event_id, str(unreadable)[:200])
        return item or RemoteEvent.gone(event_id)

    def _mode(self) -> str:
        if self._sync_collection is None:
            self._sync_collection = self.collection.supports_sync()
        return SYNC if self._sync_collection else CTAG

    # -- writing --------------------------------------------------------------------------

    def create(
        self, event: CanonicalEvent, idempotency_key: str, *, marker: str, tag: str | None = None
    ) -> RemoteEvent:
        self._writable()
        rec = event.recurrence
        if rec is not None and rec.series_id is not None:
            return self._create_exception(event, marker)
        uid = uid_for(idempotency_key)
        name = f"{uid}.ics"
        calendar = new_calendar()
        component = new_vevent(uid, event, marker)
        try:
            set_rule(component, None if rec is None else rec.rule)
        except UnreadableEvent as unreadable:
            raise PermanentError(PermanentReason.INVALID_EVENT, str(unreadable)) from None
        calendar.add_component(component)
        try:
            self.collection.put(name, calendar, create=True)
        except PreconditionFailed:
            return self._item(name, None, fresh=True)  # an earlier attempt made it
        except AlreadyExists:
            return self._by_uid(uid)  # its UID is taken by another href: that is the one
        return self._item(name, None)

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        self._writable()
        name, key = split_id(event_id)
        if key is not None:
            self._rewrite(name, key, if_match, lambda r: r.write_slot(key, event))
            return self._item(name, key)

        def patch(resource: Resource) -> None:
            assert resource.master is not None
            fill(resource.master, event)
            if resource.ours or event.recurrence is not None:
                rule = None if event.recurrence is None else event.recurrence.rule
                set_rule(resource.master, rule)

        self._rewrite(name, None, if_match, patch)
        return self._item(name, None)

    def delete(self, event_id: str, if_match: str | None) -> None:
        self._writable()
        name, key = split_id(event_id)
        try:
            if key is not None:
                # Ours: the exception goes, the rule's occurrence is back; anyone else's
                # occurrence goes altogether (EXDATE).
                self._rewrite(name, key, if_match, lambda r: r.remove_slot(key, exclude=not r.ours))
            elif is_component_version(if_match):
                resource = self._matching(name, None, if_match, self.collection.fetch(name))
                self.collection.remove(name, resource.etag)
            else:
                self.collection.remove(name, if_match)
        except NotFound:
            pass  # already gone: done

    # -- internals ------------------------------------------------------------------------

    def _writable(self) -> None:
        if self._read_only:
            raise PermanentError(PermanentReason.FORBIDDEN, f"{self.url} is read-only")

    def _create_exception(self, event: CanonicalEvent, marker: str) -> RemoteEvent:
        rec = event.recurrence
        assert rec is not None and rec.series_id is not None and rec.original_start is not None
        name, key = split_id(rec.series_id)[0], moment_key(rec.original_start)
        resource = self.collection.cached_or_fetch(name)
        if resource is not None and key in resource.overrides:
            return self._item(name, key)  # made before: the caller reconciles its content
        try:
            self._rewrite(name, key, None, lambda r: r.write_slot(key, event, marker))
        except NotFound:
            raise NotFound(f"{self.collection.host}: no series {rec.series_id}") from None
        return self._item(name, key)

    def _rewrite(
        self, name: str, key: str | None, if_match: str | None, change: Callable[[Resource], None]
    ) -> None:
        """Apply `change` to the resource and PUT it with If-Match its ETag.

        `if_match` is the version of the item written (an ETag, or a component version). When
        the resource changed meanwhile but that item did not (someone wrote another slot of
        the same series), the change is applied once more, to the new state."""
        etag = None if is_component_version(if_match) else if_match
        resource = self.collection.cached_or_fetch(name, etag)
        for attempt in (1, 2):
            resource = self._matching(name, key, if_match, resource)
            try:
                change(resource)
            except UnreadableEvent as unreadable:
                self.collection.cache.pop(name, None)  # `change` may have begun on it
                raise PermanentError(PermanentReason.INVALID_EVENT, str(unreadable)) from None
            try:
                self.collection.put(name, resource.calendar, etag=resource.etag)
                return
            except PreconditionFailed:
                if attempt == 2 or etag is not None:
                    raise
                resource = self.collection.fetch(name)

    def _matching(
        self, name: str, key: str | None, if_match: str | None, resource: Resource | None
    ) -> Resource:
        """`resource` if the item `if_match` names is unchanged in it, else a fresh copy of it
        if that one matches; `NotFound` if the item is gone, `PreconditionFailed` if changed."""
        for attempt in (1, 2):
            if resource is None or resource.master is None:
                break
            version = None if if_match is None else _version(resource, key, if_match)
            if version == if_match:
                return resource
            if attempt == 2:
                if version is None:
                    break
                raise PreconditionFailed(f"{self.collection.host}: {item_id(name, key)} changed")
            resource = self.collection.fetch(name)
        raise NotFound(f"{self.collection.host}: {item_id(name, key)}")

    def _item(self, name: str, key: str | None, fresh: bool = False) -> RemoteEvent:
        resource = self.collection.fetch(name) if fresh else self.collection.cached_or_fetch(name)
        item = None if resource is None else resource.item(key)
        if item is None:
            raise NotFound(f"{self.collection.host}: {item_id(name, key)}")
        return item

    def _by_uid(self, uid: str) -> RemoteEvent:
        resource = self.collection.find_uid(uid)
        if resource is None:
            raise AlreadyExists(f"{self.collection.host}: UID {uid} is taken, but not found")
        return self._item(resource.name, None)


def is_component_version(version: str | None) -> bool:
    return version is not None and version.startswith(COMPONENT_VERSION)


def uid_for(idempotency_key: str) -> str:
    return f"calsync-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}"


def _version(resource: Resource, key: str | None, if_match: str) -> str | None:
    """The current version of the item `if_match` was taken from (the ETag, or its own)."""
    if key is None and not is_component_version(if_match):
        return resource.etag
    item = resource.item(key)
    return None if item is None else item.version


def _within(item: RemoteEvent, window: SyncWindow) -> bool:
    event = item.event
    if event is None:
        return False
    starts_before_end = as_instant(event.start) < window.end
    if event.recurrence is not None and event.recurrence.rule:
        return starts_before_end  # a series: it may have occurrences in the window
    return starts_before_end and as_instant(event.end) > window.start
