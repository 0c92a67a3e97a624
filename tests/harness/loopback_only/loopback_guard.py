"""Only loopback is reachable: every other address a test process tries is refused at once.

Installed in the pytest process by the root conftest and in every Python process the tests
start through `sitecustomize` (the folder is put first on their PYTHONPATH). A refused attempt
raises an OSError, as an unreachable host would, so the code under test takes its usual error
path; the attempt is also written down, and the test that caused it fails on that record.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from typing import Any

LOG_VARIABLE = "LOOPBACK_GUARD_LOG"  # not CALSYNC_: settings_env passes only settings of those
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
attempts: list[str] = []


class NotLoopback(ConnectionRefusedError):
    """A test tried to reach an address other than loopback."""


def _text(host: object) -> str:
    text = host.decode() if isinstance(host, bytes) else str(host)
    return text.strip("[]").split("%")[0].rstrip(".").lower()


def literal(host: object) -> bool:
    """An address written out: looking it up sends nothing, connecting to it is checked."""
    try:
        ipaddress.ip_address(_text(host))
    except ValueError:
        return False
    return True


def loopback(host: object) -> bool:
    if host is None:
        return True  # a wildcard for bind, or the local host for getaddrinfo
    text = _text(host)
    if text in LOOPBACK_NAMES or text.endswith(".localhost") or text in {"", "0.0.0.0", "::"}:
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def refuse(what: str) -> NotLoopback:
    log = os.environ.get(LOG_VARIABLE)
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()} {what}\n")
    return NotLoopback(f"tests may only reach loopback; refused {what}")


def _checked_address(method: Callable[..., Any], name: str) -> Callable[..., Any]:
    def guarded(sock: socket.socket, address: Any, *args: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):
            raise refuse(f"{name} to {address[0]}:{address[1]}")
        return method(sock, address, *args)

    return guarded


def _checked_sendto(method: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(sock: socket.socket, data: Any, *args: Any) -> Any:
        address = args[-1]
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):
            raise refuse(f"datagram to {address[0]}:{address[1]}")
        return method(sock, data, *args)

    return guarded


def _checked_lookup(function: Callable[..., Any]) -> Callable[..., Any]:
    # Names are refused before the resolver runs: a DNS query is traffic too.
    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not (loopback(host) or literal(host) or host == socket.gethostname()):
            raise socket.gaierror(socket.EAI_NONAME, str(refuse(f"lookup of {host!r}")))
        return function(host, *args, **kwargs)

    return guarded


def install() -> None:
    if getattr(socket, "_calsync_loopback_only", False):
        return
    socket.socket.connect = _checked_address(socket.socket.connect, "connection")  # type: ignore[method-assign]
    socket.socket.connect_ex = _checked_address(socket.socket.connect_ex, "connection")  # type: ignore[method-assign]
    socket.socket.sendto = _checked_sendto(socket.socket.sendto)  # type: ignore[method-assign]
    socket.getaddrinfo = _checked_lookup(socket.getaddrinfo)
    socket.gethostbyname = _checked_lookup(socket.gethostbyname)
    socket.gethostbyname_ex = _checked_lookup(socket.gethostbyname_ex)
    socket._calsync_loopback_only = True  # type: ignore[attr-defined]
