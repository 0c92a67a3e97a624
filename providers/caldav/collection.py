"""One calendar collection over WebDAV/CalDAV: members by name, their ETags and data.

Bulk reads use one request per many members: RFC 6578 sync-collection (through the `caldav`
package, its full-listing fallback turned off), a Depth 1 PROPFIND of ETags on servers without
it, and calendar-multiget REPORTs for the data. Members are named by the last segment of their
href; the href the server spelled is remembered and reused.

The bodies last read or written are kept (`cache`), so an update right after a listing needs
no GET: the PUT's If-Match says whether what we patched is still what the server holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit
from xml.sax.saxutils import escape

from caldav.collection import Calendar as DAVCalendar
from caldav.collection import SynchronizableCalendarObjectCollection
from icalendar import Calendar

from providers.caldav.events import NotAnEvent, UnreadableEvent, render
from providers.caldav.http import (
    CALDAV,
    CS,
    DAV,
    GuardedClient,
    members,
    status_failure,
    translated,
)
from providers.caldav.items import Resource
from providers.caldav.owner import own_addresses
from providers.errors import AlreadyExists, NotFound, PreconditionFailed

log = logging.getLogger(__name__)
MULTIGET_BATCH = 250
CACHE_LIMIT = 20_000
_NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'


@dataclass(frozen=True)
class SyncAnswer:
    token: str
    changed: dict[str, str | None]  # name -> ETag
    deleted: set[str]


class Collection:
    def __init__(self, client: GuardedClient, url: str) -> None:
        self.client = client
        self.url = url if url.endswith("/") else url + "/"
        self.path = urlsplit(self.url).path
        self.host = urlsplit(self.url).netloc.rpartition("@")[2]
        self.cache: dict[str, Resource] = {}
        self.unreadable: dict[str, str] = {}  # member name -> why its data could not be read
        self._hrefs: dict[str, str] = {}
        self._own_addresses: frozenset[str] | None = None

    # -- names and hrefs ------------------------------------------------------------------

    def href(self, name: str) -> str:
        return self._hrefs.get(name) or self.path + quote(name, safe="@:+,=~!$&'()*;")

    def name_of(self, href: str) -> str | None:
        """The member's name, or None for the collection itself (iCloud lists it)."""
        path = urlsplit(urljoin(self.url, href)).path
        if unquote(path).rstrip("/") == unquote(self.path).rstrip("/"):
            return None
        name = unquote(path.rstrip("/").rsplit("/", 1)[-1])
        self._hrefs.setdefault(name, path)
        return name

    def _url(self, name: str) -> str:
        return urljoin(self.url, self.href(name))

    # -- listing --------------------------------------------------------------------------

    def supports_sync(self) -> bool:
        body = f"<D:propfind {_NS}><D:prop><D:supported-report-set/></D:prop></D:propfind>"
        with translated(self.host):
            response = self.client.propfind(self.url, body, depth=0)
        self._check(response.status, expected=(207,))
        for member in members(response.tree):
            reports = member.props.get(f"{DAV}supported-report-set")
            if reports is not None and reports.find(f".//{DAV}sync-collection") is not None:
                return True
        return False

    def sync(self, token: str | None) -> SyncAnswer:
        """RFC 6578: what changed since `token` (everything when None); no silent fallback."""
        calendar = DAVCalendar(client=self.client, url=self.url)
        with translated(self.host):
            answer = calendar.get_objects_by_sync_token(
                sync_token=token or None, load_objects=False, disable_fallback=True
            )
        assert isinstance(answer, SynchronizableCalendarObjectCollection)  # a sync client
        deleted_urls = {str(url) for url in answer.deleted_urls}
        changed: dict[str, str | None] = {}
        deleted: set[str] = set()
        for obj in answer.objects:
            name = self.name_of(str(obj.url))
            if name is None:
                continue
            if deleted_urls and str(obj.url.canonical()) in deleted_urls:
                deleted.add(name)
                self.cache.pop(name, None)
            else:
                changed[name] = obj.props.get(f"{DAV}getetag")
        return SyncAnswer(str(answer.sync_token), changed, deleted)

    def ctag(self) -> str:
        body = f'<D:propfind {_NS} xmlns:CS="http://calendarserver.org/ns/"><D:prop>' \
            "<CS:getctag/></D:prop></D:propfind>"  # fmt: skip
        with translated(self.host):
            response = self.client.propfind(self.url, body, depth=0)
        self._check(response.status, expected=(207,))
        return next((m.text(f"{CS}getctag") or "" for m in members(response.tree)), "")

    def etags(self) -> dict[str, str | None]:
        """Every member's ETag, by one Depth 1 PROPFIND."""
        body = f"<D:propfind {_NS}><D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>"
        with translated(self.host):
            response = self.client.propfind(self.url, body, depth=1)
        self._check(response.status, expected=(207,))
        found: dict[str, str | None] = {}
        for member in members(response.tree):
            kind = member.props.get(f"{DAV}resourcetype")
            is_collection = kind is not None and kind.find(f"{DAV}collection") is not None
            name = self.name_of(member.href)
            if name is not None and not is_collection:
                found[name] = member.text(f"{DAV}getetag")
        return found

    def fetch_many(self, names: Iterable[str]) -> dict[str, Resource]:
        """The named members' data by calendar-multiget; members gone meanwhile are left out."""
        wanted = sorted(set(names))
        found: dict[str, Resource] = {}
        for start in range(0, len(wanted), MULTIGET_BATCH):
            found.update(self._multiget(wanted[start : start + MULTIGET_BATCH]))
        return found

    def _multiget(self, names: list[str]) -> Iterator[tuple[str, Resource]]:
        hrefs = "".join(f"<D:href>{escape(self.href(n))}</D:href>" for n in names)
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><C:calendar-multiget {_NS}>'
            f"<D:prop><D:getetag/><C:calendar-data/></D:prop>{hrefs}</C:calendar-multiget>"
        )
        with translated(self.host):
            response = self.client.report(self.url, body, depth=1)
        self._check(response.status, expected=(207,))
        for member in members(response.tree):
            name = self.name_of(member.href)
            data = member.text(f"{CALDAV}calendar-data")
            if name is None or not data:
                continue
            resource = self._remember(name, member.text(f"{DAV}getetag"), data)
            if resource is not None:
                yield name, resource

    def find_uid(self, uid: str) -> Resource | None:
        """The member holding the VEVENT with this UID (a calendar-query), if any."""
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><C:calendar-query {_NS}>'
            "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:prop-filter name="UID"><C:text-match collation="i;octet">{escape(uid)}'
            "</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter></C:filter>"
            "</C:calendar-query>"
        )
        with translated(self.host):
            response = self.client.report(self.url, body, depth=1)
        self._check(response.status, expected=(207,))
        for member in members(response.tree):
            name, data = self.name_of(member.href), member.text(f"{CALDAV}calendar-data")
            if name is not None and data:
                resource = self._remember(name, member.text(f"{DAV}getetag"), data)
                if resource is not None:
                    return resource
        return None

    # -- one member -----------------------------------------------------------------------

    def fetch(self, name: str) -> Resource | None:
        """GET one member; None when it does not exist (or is not an event)."""
        with translated(self.host):
            response = self.client.request(self._url(name), "GET", "", {"Accept": "text/calendar"})
        if response.status in (404, 410):
            self.cache.pop(name, None)
            self.unreadable.pop(name, None)
            return None
        self._check(response.status, expected=(200,))
        return self._remember(name, response.headers.get("ETag"), str(response.raw))

    def cached_or_fetch(self, name: str, etag: str | None = None) -> Resource | None:
        cached = self.cache.get(name)
        if cached is not None and (etag is None or cached.etag == etag):
            return cached
        return self.fetch(name)

    def put(
        self, name: str, calendar: Calendar, *, create: bool = False, etag: str | None = None
    ) -> None:
        """Create (`If-None-Match: *`) or replace (`If-Match: etag`, if known) a member.

        412 -> `PreconditionFailed`; a UID already used by another member (409 on Radicale,
        412 with no-uid-conflict on Xandikos) -> `AlreadyExists`; 404 on a replace ->
        `NotFound`. What was written is remembered with its new ETag (`cache`); after a
        failure the member is forgotten (the caller may have changed the cached copy)."""
        try:
            new_etag = self._put(name, render(calendar), create, etag)
        except BaseException:
            self.cache.pop(name, None)
            raise
        if new_etag is None or new_etag.startswith("W/"):
            self.fetch(name)  # the server rewrote the body: read what it holds (RFC 4791 5.3.4)
        else:
            own = self._owner_if(any("ATTENDEE" in e for e in calendar.walk("VEVENT")))
            self._keep(Resource(name, new_etag, calendar, own))

    def _put(self, name: str, text: str, create: bool, etag: str | None) -> str | None:
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if create:
            headers["If-None-Match"] = "*"
        elif etag is not None:
            headers["If-Match"] = etag
        with translated(self.host):
            response = self.client.put(self._url(name), text, headers)
        if response.status in (409, 412) and b"no-uid-conflict" in _body(response):
            raise AlreadyExists(f"{self.host}: the UID of {name} is used by another event")
        if response.status == 412:
            raise PreconditionFailed(f"{self.host}: {name} changed meanwhile")
        if response.status == 404 and not create:
            raise NotFound(f"{self.host}: {name}")
        self._check(response.status, expected=(200, 201, 204))
        etag_header = response.headers.get("ETag")
        return None if etag_header is None else str(etag_header)

    def remove(self, name: str, etag: str | None) -> None:
        """DELETE with If-Match; a member already gone counts as deleted."""
        headers = {} if etag is None else {"If-Match": etag}
        with translated(self.host):
            response = self.client.delete(self._url(name), headers)
        self.cache.pop(name, None)
        if response.status in (404, 410):
            return
        if response.status == 412:
            raise PreconditionFailed(f"{self.host}: {name} changed meanwhile")
        self._check(response.status, expected=(200, 204))

    # -- internals ------------------------------------------------------------------------

    def _remember(self, name: str, etag: str | None, text: str) -> Resource | None:
        self.cache.pop(name, None)
        try:
            resource = Resource.parse(name, etag, text, self._owner_if("ATTENDEE" in text))
        except NotAnEvent:
            self.unreadable.pop(name, None)
            return None
        except UnreadableEvent as unreadable:
            log.warning("caldav: cannot read %s: %s", name, unreadable)
            self.unreadable[name] = str(unreadable)[:200]
            return None
        self.unreadable.pop(name, None)
        return self._keep(resource)

    def _owner_if(self, attendees: bool) -> frozenset[str]:
        """The owner's addresses, asked for once, and only when an event names attendees."""
        if not attendees:
            return frozenset()
        if self._own_addresses is None:
            self._own_addresses = own_addresses(self.client, self.host)
        return self._own_addresses

    def _keep(self, resource: Resource) -> Resource:
        if len(self.cache) >= CACHE_LIMIT:
            self.cache.clear()
        self.cache[resource.name] = resource
        return resource

    def _check(self, status: int, expected: tuple[int, ...]) -> None:
        if status not in expected:
            raise status_failure(status, self.host)


def _body(response: object) -> bytes:
    raw = getattr(response, "_raw", b"") or b""
    return raw if isinstance(raw, bytes) else str(raw).encode()
