"""SSRF guard for user-supplied server URLs (a CalDAV server is whatever URL a user types).

`check_url` resolves the URL's host and refuses it when any address it resolves to is one a
stranger must not make calsync's workers talk to:

- always refused: cloud metadata endpoints (169.254.169.254, fd00:ec2::254 and the few other
  well-known ones), link-local (169.254.0.0/16, fe80::/10: where metadata services live),
  multicast, unspecified and reserved addresses, and any scheme but http/https;
- refused unless `allow_private=True`: loopback, private (RFC 1918, fc00::/7) and shared
  (100.64.0.0/10) addresses. Self-hosted deployments that sync with a server on their own
  network, and the tests (servers on 127.0.0.1), allow them.

An IPv4 address embedded in IPv6 (::ffff:a.b.c.d, 64:ff9b::/96) is judged as that IPv4 address.
The check resolves the name itself; the HTTP client resolves it again when it connects, so a
DNS answer that changes in between (rebinding) is not caught here: callers re-check every new
host and every redirect.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from providers.errors import PermanentError, PermanentReason

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS IPv6
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
ALLOWED_SCHEMES = ("http", "https")


class UnsafeAddress(PermanentError, ValueError):
    """The URL is not one calsync may connect to. Names the host, never credentials."""

    def __init__(self, message: str) -> None:
        super().__init__(PermanentReason.FORBIDDEN, message)


class UnresolvedHost(ValueError):
    """The host name does not resolve (a typo, or DNS is down)."""


def check_url(url: str, allow_private: bool = False) -> None:
    """Raise `UnsafeAddress` unless every address of the URL's host may be connected to."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ALLOWED_SCHEMES:
        raise UnsafeAddress(f"only http and https URLs are allowed, not {parts.scheme!r}")
    if not host:
        raise UnsafeAddress("the URL names no host")
    try:
        port = parts.port
    except ValueError:
        raise UnsafeAddress(f"the URL for {host} has an invalid port") from None
    for address in resolve(host, port or (443 if parts.scheme == "https" else 80)):
        refusal = refusal_for(address, allow_private)
        if refusal is not None:
            raise UnsafeAddress(f"{host} resolves to {address}, {refusal}; refused")


def check_webhook_url(url: str) -> None:
    """Where calsync may POST a tenant's notices: https to a public address, or a receiver on
    this machine (every address loopback), where plain http will do. Raises like `check_url`."""
    parts = urlsplit(url)
    local = parts.scheme in ALLOWED_SCHEMES and bool(parts.hostname) and all(
        _embedded_ipv4(address).is_loopback for address in resolve(str(parts.hostname), 0)
    )
    if parts.scheme == "http" and parts.hostname and not local:
        raise UnsafeAddress("plain http is allowed to a loopback address only; use https")
    check_url(url, allow_private=local)


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnresolvedHost(f"cannot resolve {host}: {error}") from None
    # The scope of a link-local IPv6 address ("fe80::1%eth0") does not change what it is.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def refusal_for(address: IPAddress, allow_private: bool = False) -> str | None:
    """Why `address` is refused, or None when it may be connected to."""
    address = _embedded_ipv4(address)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return None if allow_private else "a loopback address"
    if address.is_private or not address.is_global:
        if allow_private and not address.is_reserved:
            return None
        return "a reserved address" if address.is_reserved else "a private address"
    return None


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address
