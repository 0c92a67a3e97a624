"""The calendar owner's own addresses, to find their ATTENDEE line in an invitation.

RFC 6638 lists a principal's addresses in its `calendar-user-address-set` (mailto: URIs on
iCloud, Nextcloud, Xandikos). A server without scheduling (Radicale) answers with the
principal's path, which no invitation names; the account's username counts too when it is an
email address (an Apple ID is). Addresses compare without `mailto:` and case-insensitively.
"""

from __future__ import annotations

from caldav.lib import error as dav_error

from providers.caldav.events import user_address
from providers.caldav.http import GuardedClient, translated


def own_addresses(client: GuardedClient, host: str) -> frozenset[str]:
    """The username if it is an address, and the principal's calendar user addresses. A
    server that has no such property is no error; any other failure is raised as usual."""
    username = str(client.username or "")
    found = {user_address(username)} if "@" in username else set()
    with translated(host):
        try:
            listed = client.principal().calendar_user_address_set()
        except (dav_error.NotFoundError, dav_error.PropfindError):
            listed = []
    found.update(user_address(uri) for uri in listed if isinstance(uri, str) and uri)
    return frozenset(found)
