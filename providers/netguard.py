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

A check is only as good as the connection that follows it: a name resolved twice may answer a
public address to the check and 127.0.0.1 to the connection (DNS rebinding). So the checks
return the addresses they judged, for the caller to connect to one of them with the host name
kept for the Host header and TLS, and `check_addresses` judges what an HTTP client's own
resolver found, just before it connects (the CalDAV client's `GuardedResolver`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
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


def check_url(url: str, allow_private: bool = False) -> list[IPAddress]:
    """Raise `UnsafeAddress` unless every address of the URL's host may be connected to;
    returns those addresses."""
    host, port = _destination(url)
    addresses = resolve(host, port)
    check_addresses(host, addresses, allow_private)
    return addresses


def check_webhook_url(url: str) -> list[IPAddress]:
    """Where calsync may POST a tenant's notices: https to a public address, or a receiver on
    this machine (every address loopback), where plain http will do. Raises like `check_url`,
    from one lookup whose addresses it returns."""
    host, port = _destination(url)
    addresses = resolve(host, port)
    local = all(_embedded_ipv4(address).is_loopback for address in addresses)
    if urlsplit(url).scheme == "http" and not local:
        raise UnsafeAddress("plain http is allowed to a loopback address only; use https")
    check_addresses(host, addresses, allow_private=local)
    return addresses


def check_addresses(host: str, addresses: Iterable[IPAddress], allow_private: bool) -> None:
    """Raise `UnsafeAddress` naming the first of `host`'s addresses that is refused."""
    for address in addresses:
        refusal = refusal_for(address, allow_private)
        if refusal is not None:
            raise UnsafeAddress(f"{host} resolves to {address}, {refusal}; refused")


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnresolvedHost(f"cannot resolve {host}: {error}") from None
    return [address_of(info[4]) for info in infos]


def address_of(socket_address: tuple[Any, ...]) -> IPAddress:
    """The IP address of a `getaddrinfo` socket address."""
    # The scope of a link-local IPv6 address ("fe80::1%eth0") does not change what it is.
    return ipaddress.ip_address(str(socket_address[0]).split("%", 1)[0])


def _destination(url: str) -> tuple[str, int]:
    """The URL's host and port, or `UnsafeAddress` for a URL that is not http(s) to a host."""
    parts = urlsplit(url)
    if parts.scheme not in ALLOWED_SCHEMES:
        raise UnsafeAddress(f"only http and https URLs are allowed, not {parts.scheme!r}")
    if not parts.hostname:
        raise UnsafeAddress("the URL names no host")
    try:
        port = parts.port
    except ValueError:
        raise UnsafeAddress(f"the URL for {parts.hostname} has an invalid port") from None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


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
