"""Reading a CalDAV calendar's changes: full listings and incremental ones behind one cursor.

With RFC 6578 sync-collection the server says which members changed or went since the token.
Without it (`CTAG` mode) the collection's CTag says whether anything changed at all, and a
diff of every member's ETag against the cursor's says what. Either way the changed members'
data comes in calendar-multiget batches, and each changed member is listed whole: all its
current items, plus a tombstone for each item it listed last time and lists no more.
"""

from __future__ import annotations

import logging

from providers.base import ChangePage, SyncWindow
from providers.caldav.collection import Collection
from providers.caldav.cursor import CTAG, SYNC, Cursor, SeriesSeen, etag_digest, window_seconds
from providers.caldav.items import Resource, item_id, slot_keys
from sync.snapshot import RemoteEvent

log = logging.getLogger(__name__)


def full_listing(collection: Collection, window: SyncWindow, mode: str) -> ChangePage:
    etags: dict[str, str] = {}
    if mode == SYNC:
        answer = collection.sync(None)
        token, names = answer.token, list(answer.changed)
    else:
        token = collection.ctag()
        current = collection.etags()
        etags = {name: etag_digest(etag) for name, etag in current.items()}
        names = list(current)
    cursor = Cursor(mode, token, window_seconds(window), etags)
    fetched = collection.fetch_many(names)
    items: list[RemoteEvent] = []
    for name in sorted(set(fetched) | (set(collection.unreadable) & set(names))):
        resource = fetched.get(name)
        listed = _listed(collection, name, resource, window)
        items.extend(listed)
        if resource is not None:
            _remember_series(cursor, resource, listed)
    return ChangePage(tuple(items), cursor.encode(), complete=True)


def changes_since(collection: Collection, cursor: Cursor, window: SyncWindow) -> ChangePage:
    """Raises `CursorExpired` when the server no longer knows the cursor's sync token."""
    changed, deleted = _changed_members(collection, cursor)
    if window_seconds(window) != cursor.window:
        # Others' series list only the occurrences within the window: list them again.
        changed.update(dict.fromkeys(n for n, s in cursor.series.items() if not s.ours))
    cursor.window = window_seconds(window)
    fetched = collection.fetch_many(n for n in changed if n not in deleted)
    items: list[RemoteEvent] = []
    for name in sorted(set(changed) | deleted):
        resource = fetched.get(name)
        listed = [] if name in deleted else _listed(collection, name, resource, window)
        if any(item.unreadable for item in listed):
            # What it listed before is kept as it was: unreadable, not gone.
            why = listed[0].unreadable or ""
            seen = _listed_before(cursor.series.get(name), name)
            items.extend(RemoteEvent.unread(event_id, why) for event_id in sorted(seen))
            continue
        before = _listed_before(cursor.series.pop(name, None), name)
        now = {item.id for item in listed}
        items.extend(listed)
        items.extend(RemoteEvent.gone(event_id) for event_id in sorted(before - now))
        if resource is not None:
            _remember_series(cursor, resource, listed)
    return ChangePage(tuple(items), cursor.encode(), complete=False)


def _listed(
    collection: Collection, name: str, resource: Resource | None, window: SyncWindow
) -> list[RemoteEvent]:
    """A member's items: none when it is gone or not an event, and one unreadable item
    when its data cannot be read, so that its copies are kept rather than deleted."""
    if resource is None:
        why = collection.unreadable.get(name)
        return [] if why is None else [RemoteEvent.unread(name, why)]
    try:
        return resource.items(window)
    except ValueError as unreadable:  # values no event can have
        log.warning("caldav: cannot list %s: %s", name, unreadable)
        return [RemoteEvent.unread(name, str(unreadable)[:200], resource.etag)]


def _listed_before(seen: SeriesSeen | None, name: str) -> set[str]:
    """The ids a member listed last time: its own id unless it was someone else's series
    (then only its occurrences, which the cursor remembers)."""
    if seen is None:
        return {name}
    own = {name} if seen.ours else set()
    return own | {item_id(name, key) for key in seen.keys}


def _changed_members(collection: Collection, cursor: Cursor) -> tuple[dict[str, None], set[str]]:
    if cursor.mode == SYNC:
        answer = collection.sync(cursor.token)
        cursor.token = answer.token
        return dict.fromkeys(answer.changed), set(answer.deleted)
    assert cursor.mode == CTAG
    ctag = collection.ctag()
    if ctag and ctag == cursor.token:
        return {}, set()
    current = {name: etag_digest(etag) for name, etag in collection.etags().items()}
    changed = dict.fromkeys(n for n, digest in current.items() if cursor.etags.get(n) != digest)
    deleted = set(cursor.etags) - set(current)
    cursor.token, cursor.etags = ctag, current
    return changed, deleted


def _remember_series(cursor: Cursor, resource: Resource, listed: list[RemoteEvent]) -> None:
    if resource.recurring:
        cursor.series[resource.name] = SeriesSeen(resource.ours, slot_keys(listed))
