"""The CalDAV provider (`caldav`, and `apple` for iCloud): an account and its calendars.

    account = CalDAVAccount(url, username, password)  # url=APPLE_URL for iCloud
    account.verify()  # principal discovery now; wrong credentials -> InvalidCredentials
    account.list_calendars()  # the calendars that hold events, read-only ones flagged
    calendar = account.calendar(remote_id, window)  # a `CalendarProvider`

Module map: `caldav_calendar` (one calendar: listings and writes), `caldav_http` (the guarded
client, errors), `caldav_collection` (one collection's members over WebDAV), `caldav_changes`
(listings and the cursor's diff), `caldav_items` (what one resource lists as; writing one slot
of a series), `caldav_ical` (VEVENT <-> canonical event), `caldav_cursor`, and `netguard` (the
SSRF guard every request passes).
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from providers.base import BeforeRequest, CalendarInfo, SyncWindow
from providers.caldav_calendar import CalDAVCalendar, uid_for
from providers.caldav_collection import Collection
from providers.caldav_http import (
    CALDAV,
    DAV,
    DEFAULT_CONCURRENCY,
    GuardedClient,
    InvalidCredentials,
    Member,
    members,
    status_failure,
    translated,
)

__all__ = ["APPLE_URL", "CalDAVAccount", "CalDAVCalendar", "InvalidCredentials", "uid_for"]

APPLE_URL = "https://caldav.icloud.com/"
DEFAULT_TIMEOUT = 30  # seconds
_WRITE_PRIVILEGES = frozenset({f"{DAV}all", f"{DAV}write", f"{DAV}write-content"})
_CALENDAR_PROPS = (
    "<D:resourcetype/><D:displayname/><D:current-user-privilege-set/>"
    "<C:supported-calendar-component-set/><C:calendar-timezone/>"
)


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
        body = f'<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>' \
            f"{_CALENDAR_PROPS}</D:prop></D:propfind>"  # fmt: skip
        with translated(self.host):
            response = self.client.propfind(home, body, depth=1)
        if response.status != 207:
            raise status_failure(response.status, self.host)
        found = [calendar_info(urljoin(home, m.href), m) for m in members(response.tree)]
        return sorted((c for c in found if c is not None), key=lambda c: c.remote_id)

    def calendar(
        self, remote_id: str, window: SyncWindow, read_only: bool = False,
        *, sync_collection: bool | None = None,
    ) -> CalDAVCalendar:  # fmt: skip
        """`sync_collection`: None finds out whether the server offers RFC 6578; False uses
        the CTag and ETag listing (as for a server without it)."""
        url = urljoin(str(self.client.url), remote_id)
        return CalDAVCalendar(Collection(self.client, url), window, read_only, sync_collection)

    def close(self) -> None:
        self.client.close()


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
