"""A CalDAV account (`caldav`, and `apple` for iCloud): principal discovery, its calendars, a
dedicated calendar made by MKCALENDAR, and a `CalDAVCalendar` for each calendar that syncs.

    account = CalDAVAccount(url, username, password)  # iCloud: CALSYNC_APPLE_CALDAV_URL
    account.verify()  # principal discovery now; wrong credentials -> InvalidCredentials
    account.list_calendars()  # the calendars that hold events, read-only ones flagged
    account.create_calendar("Wix Bookings")  # MKCALENDAR; a retry reuses what it made
    calendar = account.calendar(remote_id, window)  # a `CalendarProvider`

The package: `calendar` (one calendar: listings and writes), `http` (the guarded client,
errors), `collection` (one collection's members over WebDAV), `listing` (listings and the
cursor's diff), `items` (what one resource lists as; writing one slot of a series), `events`
(VEVENT <-> canonical event), `cursor`; every request passes `providers.netguard`."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import escape

from config import Settings
from providers.base import (
    AccountHooks,
    AccountSource,
    BeforeRequest,
    CalendarInfo,
    Channel,
    Credentials,
    SyncWindow,
)
from providers.caldav.calendar import CalDAVCalendar
from providers.caldav.collection import Collection
from providers.caldav.http import (
    CALDAV,
    DAV,
    DEFAULT_CONCURRENCY,
    GuardedClient,
    Member,
    members,
    status_failure,
    translated,
)
from providers.errors import PermanentError, PermanentReason, ProviderError

DEFAULT_TIMEOUT = 30  # seconds


_WRITE_PRIVILEGES = frozenset({f"{DAV}all", f"{DAV}write", f"{DAV}write-content"})


_CALENDAR_PROPS = (
    "<D:resourcetype/><D:displayname/><D:current-user-privilege-set/>"
    "<C:supported-calendar-component-set/><C:calendar-timezone/>"
)


_PROPFIND = f'<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>' \
    f"{_CALENDAR_PROPS}</D:prop></D:propfind>"  # fmt: skip


_MKCALENDAR = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
    "<D:displayname>{name}</D:displayname><C:supported-calendar-component-set>"
    '<C:comp name="VEVENT"/></C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>'
)


# MKCALENDAR at an href already in use: Radicale 409, Xandikos 403, RFC 4918 405.
_TAKEN = (403, 405, 409)


_CANDIDATES = 5  # hrefs tried when the first ones hold something other than our calendar


def open_account(settings: Settings, source: AccountSource, hooks: AccountHooks
                 ) -> CalDAVAccount:  # fmt: skip
    """The account on the connection's server; without one, the configured Apple server."""
    secret = source.credentials
    return CalDAVAccount(
        source.server_url or str(settings.apple_caldav_url),
        str(secret.get("username", "")), str(secret.get("password", "")),
        before_request=hooks.before_request, allow_private=settings.caldav_allow_private,
        max_concurrent=settings.caldav_max_concurrent_requests,
    )  # fmt: skip


class CalDAVAccount:
    """One set of credentials on one CalDAV server; hands out its calendars."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        before_request: BeforeRequest | None = None,
        allow_private: bool = False,
        timeout: int = DEFAULT_TIMEOUT,
        max_concurrent: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.client = GuardedClient(
            url, username, password, before_request=before_request or (lambda: None),
            allow_private=allow_private, timeout=timeout, max_concurrent=max_concurrent,
        )  # fmt: skip
        self.host = urlsplit(url).netloc.rpartition("@")[2]
        self._home: str | None = None

    def verify(self) -> str:
        """Discover the principal and its calendar home now; returns the home's URL.

        Wrong credentials raise `InvalidCredentials` (a `PermanentError(TOKEN_REVOKED)`)."""
        if self._home is None:
            with translated(self.host):
                principal = self.client.principal()
                home = str(principal.calendar_home_set.url)
            self._home = home if home.endswith("/") else home + "/"
        return self._home

    def list_calendars(self) -> list[CalendarInfo]:
        """The calendars that hold events, read-only where the user lacks write privileges."""
        home = self.verify()
        with translated(self.host):
            response = self.client.propfind(home, _PROPFIND, depth=1)
        if response.status != 207:
            raise status_failure(response.status, self.host)
        found = [calendar_info(urljoin(home, m.href), m) for m in members(response.tree)]
        return sorted((c for c in found if c is not None), key=lambda c: c.remote_id)

    def create_calendar(self, name: str, key: str = "") -> CalendarInfo:
        """A new event calendar named `name` in the calendar home, made by MKCALENDAR.

        Its href is derived from `name` and `key`, so a retry after a lost answer finds the
        calendar the first attempt made and reuses it. An href that holds anything else (a
        collection of tasks, a read-only one, a plain collection) is passed over for the next."""
        home = self.verify()
        for href in candidate_hrefs(home, name, key):
            refusal = self._mkcalendar(href, name)
            there, info = self._calendar_at(href)
            if info is not None and not info.read_only:
                return info
            if refusal is not None and not there:
                raise refusal  # a real refusal (no right to make calendars, say)
            if refusal is None:
                raise PermanentError(PermanentReason.FORBIDDEN,
                                     f"{self.host} made {href} but it holds no events")  # fmt: skip
        raise PermanentError(
            PermanentReason.FORBIDDEN, f"{self.host}: every href for a calendar {name!r} is taken"
        )

    def _mkcalendar(self, url: str, name: str) -> ProviderError | None:
        """None when the calendar was made; the error when the server refused to."""
        body = _MKCALENDAR.format(name=escape(name))
        try:
            with translated(self.host):
                response = self.client.mkcalendar(url, body)
        except PermanentError as refused:  # a 403 (Xandikos: the href is in use)
            if refused.reason is not PermanentReason.FORBIDDEN:
                raise
            return refused
        if response.status in _TAKEN:
            return status_failure(response.status, self.host)
        if response.status not in (200, 201, 204, 207):
            raise status_failure(response.status, self.host)
        return None

    def _calendar_at(self, url: str) -> tuple[bool, CalendarInfo | None]:
        """Whether anything is at `url`, and the event calendar it is, if it is one."""
        with translated(self.host):
            response = self.client.propfind(url, _PROPFIND, depth=0)
        if response.status in (404, 410):
            return False, None
        if response.status != 207:
            raise status_failure(response.status, self.host)
        found = members(response.tree)
        return True, None if not found else calendar_info(url, found[0])

    def calendar(
        self, info: CalendarInfo, window: SyncWindow, *, sync_collection: bool | None = None
    ) -> CalDAVCalendar:
        """`sync_collection`: None finds out whether the server offers RFC 6578; False uses
        the CTag and ETag listing (as for a server without it)."""
        url = urljoin(str(self.client.url), info.remote_id)
        return CalDAVCalendar(Collection(self.client, url), window, info.read_only,
                              sync_collection)  # fmt: skip

    # CalDAV has no push (its calendars are polled) and no tokens to refresh.

    def open_channel(self, calendar_id: str, address: str) -> Channel:
        raise NotImplementedError("CalDAV servers do not push; calsync polls them")

    def renew_channel(self, channel: Channel, calendar_id: str, address: str) -> Channel:
        raise NotImplementedError("CalDAV servers do not push; calsync polls them")

    def stop_channel(self, channel: Channel) -> None:
        raise NotImplementedError("CalDAV servers do not push; calsync polls them")

    def refresh_credentials(self) -> Credentials:
        raise NotImplementedError("a CalDAV password does not expire")

    def close(self) -> None:
        self.client.close()


def candidate_hrefs(home: str, name: str, key: str = "") -> list[str]:
    """Where a calendar named `name` is made: a slug of the name, a digest of the name and
    `key` (so it meets no calendar a person named the same), then numbered alternatives."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "calendar"
    digest = hashlib.sha256(f"{name}\x1f{key}".encode()).hexdigest()[:10]
    base = f"{home}calsync-{slug}-{digest}"
    return [f"{base}/"] + [f"{base}-{n}/" for n in range(2, _CANDIDATES + 1)]


def calendar_info(url: str, member: Member) -> CalendarInfo | None:
    """A calendar collection that can hold VEVENTs, else None (the home, address books...)."""
    kind = member.props.get(f"{DAV}resourcetype")
    if kind is None or kind.find(f"{CALDAV}calendar") is None:
        return None
    components = member.props.get(f"{CALDAV}supported-calendar-component-set")
    if components is not None and len(components):
        names = {str(comp.get("name", "")).upper() for comp in components}
        if "VEVENT" not in names:
            return None
    return CalendarInfo(
        remote_id=url,
        name=member.text(f"{DAV}displayname") or urlsplit(url).path.rstrip("/").split("/")[-1],
        read_only=not writable(member),
        time_zone=_timezone_id(member.text(f"{CALDAV}calendar-timezone")),
    )


def writable(member: Member) -> bool:
    """From DAV:current-user-privilege-set (RFC 3744); a server that does not say: writable."""
    privileges = member.props.get(f"{DAV}current-user-privilege-set")
    if privileges is None:
        return True
    granted = {child.tag for p in privileges.iter(f"{DAV}privilege") for child in p}
    return bool(granted & _WRITE_PRIVILEGES)


def _timezone_id(vtimezone: str | None) -> str | None:
    for line in (vtimezone or "").splitlines():
        if line.upper().startswith("TZID:"):
            return line.split(":", 1)[1].strip() or None
    return None
