"""The HTTP side of the CalDAV provider: one guarded `caldav.DAVClient` per account.

Every request the `caldav` package or the provider makes passes through `GuardedClient`:
- it connects only to addresses `providers.netguard` let through: the client's DNS lookups go
  through `GuardedResolver`, which judges the very addresses the connection then uses, so a
  name that answers differently later (rebinding) and every redirect hop are judged too;
- `before_request()` is called for each HTTP request (throttling and call counting);
- at most `max_concurrent` requests run against one host at a time, per process;
- library and network errors become calsync's provider errors (`translated`).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import niquests
from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from caldav.response import DAVResponse
from lxml import etree
from niquests.utils import BaseResolver, ProtocolResolver

from providers.base import BeforeRequest
from providers.errors import (
    CursorExpired,
    ErrorMaker,
    NotFound,
    PermanentError,
    PermanentReason,
    ProviderError,
    RateLimited,
    TransientError,
    error_for_status,
)
from providers.netguard import UnresolvedHost, address_of, check_addresses, check_url

DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
CS = "{http://calendarserver.org/ns/}"
VALID_SYNC_TOKEN = f"{DAV}valid-sync-token"
DEFAULT_CONCURRENCY = 4


class InvalidCredentials(PermanentError):
    """The server refused the username and password (401). Never carries the password."""

    def __init__(self, host: str) -> None:
        super().__init__(
            PermanentReason.TOKEN_REVOKED,
            f"the CalDAV server at {host} refused the username or password",
        )


class HostLimits:
    """One semaphore per host: a cap on concurrent requests to one server, per process.
    The limit is a process-wide setting; the first client to reach a host sets it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, threading.BoundedSemaphore] = {}

    def for_host(self, host: str, limit: int) -> threading.BoundedSemaphore:
        with self._lock:
            if host not in self._limits:
                self._limits[host] = threading.BoundedSemaphore(max(1, limit))
            return self._limits[host]


HOST_LIMITS = HostLimits()


AddressInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]


class GuardedResolver(BaseResolver):
    """The system's DNS, refusing (`UnsafeAddress`) a host any of whose addresses
    `netguard` refuses. The HTTP client connects only to addresses its resolver returned."""

    protocol = ProtocolResolver.SYSTEM
    implementation = "netguard"

    def __init__(self, allow_private: bool) -> None:
        super().__init__(None)
        self.allow_private = allow_private

    def recycle(self) -> GuardedResolver:
        return self  # holds nothing to reopen

    def close(self) -> None:
        pass

    def is_available(self) -> bool:
        return True

    def getaddrinfo(
        self,
        host: bytes | str | None,
        port: str | int | None,
        family: socket.AddressFamily,
        type: socket.SocketKind,
        proto: int = 0,
        flags: int = 0,
        *,
        quic_upgrade_via_dns_rr: bool = False,
    ) -> list[AddressInfo]:
        infos: list[AddressInfo] = list(socket.getaddrinfo(host, port, family, type, proto, flags))
        name = host.decode() if isinstance(host, bytes) else str(host)
        check_addresses(name, (address_of(info[4]) for info in infos), self.allow_private)
        return infos


class GuardedClient(DAVClient):
    """A `DAVClient` whose every request is checked, counted and limited (see module doc)."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        before_request: BeforeRequest,
        allow_private: bool,
        timeout: int,
        max_concurrent: int,
    ) -> None:
        try:
            check_url(url, allow_private)  # refuse a server at once, before any request
        except UnresolvedHost as unresolved:
            raise TransientError(str(unresolved)) from None
        super().__init__(
            url=url, username=username, password=password, timeout=timeout,
            enable_rfc6764=False,
        )  # fmt: skip
        multiplexed = self.session.multiplexed
        self.session.close()
        self.session = niquests.Session(
            resolver=GuardedResolver(allow_private), multiplexed=multiplexed
        )
        # A proxy from the environment would resolve the host itself, past the resolver.
        self.session.trust_env = False
        self.max_concurrent = max_concurrent
        # Fires for each request sent, redirect hops and the retry after a 401 included.
        self.session.hooks["pre_request"].append(lambda request, **_: before_request())

    def request(self, url: str, method: str = "GET", body: str = "",
                headers: Any = None, rate_limit_time_slept: float = 0) -> DAVResponse:  # fmt: skip
        host = urlsplit(str(url)).netloc.rpartition("@")[2]
        with HOST_LIMITS.for_host(host, self.max_concurrent), translated(host):
            return super().request(url, method, body, headers, rate_limit_time_slept)


@contextmanager
def translated(host: str) -> Iterator[None]:
    """Library and network errors as provider errors; ours pass through unchanged."""
    try:
        yield
    except ProviderError:
        raise
    except dav_error.RateLimitError as limited:
        raise RateLimited(f"{host} is rate limiting", limited.retry_after_seconds) from None
    except dav_error.DAVError as failure:
        raise dav_failure(failure, host) from None
    except niquests.exceptions.Timeout:
        raise TransientError(f"{host} timed out") from None
    except (niquests.exceptions.RequestException, OSError) as failure:
        raise TransientError(f"cannot reach {host}: {type(failure).__name__}") from None
    except etree.XMLSyntaxError:
        raise TransientError(f"{host} answered with unreadable XML") from None


def dav_failure(failure: dav_error.DAVError, host: str) -> ProviderError:
    if VALID_SYNC_TOKEN in failure.preconditions:
        return CursorExpired(f"{host} no longer knows the sync token")
    status = failure.status
    if isinstance(failure, dav_error.AuthorizationError) and status != 403:
        return InvalidCredentials(host)
    if isinstance(failure, dav_error.NotFoundError) or status in (404, 410):
        return NotFound(f"{host}: not found")
    return status_failure(status, host, failure.reason)


def status_failure(status: int | None, host: str, detail: str = "") -> ProviderError:
    """The provider error for an HTTP status the provider does not handle itself."""
    message = f"{host} answered {status}" + (f": {detail}" if detail else "")
    ladder: dict[int, ErrorMaker] = {401: lambda _message, _: InvalidCredentials(host)}
    return error_for_status(status, message, None, ladder)


@dataclass(frozen=True)
class Member:
    """One `DAV:response` of a multistatus: its href, status and found properties."""

    href: str
    status: int | None
    props: dict[str, etree._Element]

    def text(self, tag: str) -> str | None:
        element = self.props.get(tag)
        return None if element is None else (element.text or "")


def members(tree: etree._Element | None) -> list[Member]:
    if tree is None:
        return []
    found: list[Member] = []
    for response in tree.iter(f"{DAV}response"):
        href = response.findtext(f"{DAV}href") or ""
        props: dict[str, etree._Element] = {}
        for propstat in response.iter(f"{DAV}propstat"):
            if _status_code(propstat.findtext(f"{DAV}status")) not in (None, 200):
                continue
            for prop in propstat.iter(f"{DAV}prop"):
                props.update((child.tag, child) for child in prop if isinstance(child.tag, str))
        found.append(Member(href, _status_code(response.findtext(f"{DAV}status")), props))
    return found


def _status_code(line: str | None) -> int | None:
    parts = (line or "").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
