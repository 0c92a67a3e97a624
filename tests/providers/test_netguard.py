"""The SSRF guard: what `check_url` refuses, and that the CalDAV provider asks it before every
connection, redirects included. Only literal addresses and `localhost` are resolved here; names
that answer differently from one lookup to the next are in test_dns_rebinding.py."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address

import pytest
from conftest import CallCounter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers.caldav.account import CalDAVAccount
from providers.errors import PermanentError, PermanentReason
from providers.netguard import UnsafeAddress, check_url
from sandbox.caldav_servers import CalDAVServer
from sandbox.server import ServedApp, serve_in_thread

ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://169.254.170.2/v2/credentials",
    "http://[::ffff:169.254.169.254]/",
    "http://169.254.1.1/",  # link-local
    "http://[fe80::1]/",
    "http://224.0.0.1/",  # multicast
    "http://0.0.0.0/",
    "http://240.0.0.1/",  # reserved
]
PRIVATE = [
    "http://127.0.0.1:5232/",
    "http://localhost/",
    "http://[::1]/",
    "http://10.1.2.3/",
    "http://192.168.0.10/",
    "http://172.16.5.4/",
    "http://100.64.0.1/",  # shared address space (carrier-grade NAT)
    "http://[fd12:3456::1]/",
]


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_metadata_link_local_and_reserved_addresses_are_always_refused(url: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(UnsafeAddress) as refused:
            check_url(url, allow_private=allow_private)
        assert "refused" in str(refused.value)


@pytest.mark.parametrize("url", PRIVATE)
def test_private_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(UnsafeAddress):
        check_url(url)
    check_url(url, allow_private=True)


def test_public_addresses_pass() -> None:
    check_url("https://17.253.144.10/")  # an address of Apple's
    check_url("http://[2001:4860:4860::8888]:8443/dav/")


def test_the_check_returns_the_addresses_it_judged() -> None:
    """What a caller connects to, instead of resolving the name again."""
    assert check_url("https://17.253.144.10:8443/") == [ip_address("17.253.144.10")]
    assert check_url("http://[::1]/", allow_private=True) == [ip_address("::1")]


@pytest.mark.parametrize("url", ["ftp://10.0.0.1/", "file:///etc/passwd", "gopher://x/", "//x/"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(UnsafeAddress):
        check_url(url, allow_private=True)


def test_the_error_names_the_host_and_never_the_credentials() -> None:
    with pytest.raises(UnsafeAddress) as refused:
        check_url("http://someone:hunter2@169.254.169.254/")
    assert "169.254.169.254" in str(refused.value) and "hunter2" not in str(refused.value)
    assert isinstance(refused.value, ValueError)
    assert isinstance(refused.value, PermanentError)
    assert refused.value.reason is PermanentReason.FORBIDDEN


def test_the_provider_refuses_a_metadata_url_before_any_request() -> None:
    counter = CallCounter()
    with pytest.raises(UnsafeAddress):
        CalDAVAccount("http://169.254.169.254/", "me", "pw", allow_private=True,
                      before_request=counter)  # fmt: skip
    assert counter.calls == 0


def test_the_provider_refuses_a_private_server_unless_allowed(radicale: CalDAVServer) -> None:
    with pytest.raises(UnsafeAddress):
        CalDAVAccount(radicale.base_url, radicale.username, radicale.password)
    allowed = CalDAVAccount(radicale.base_url, radicale.username, radicale.password,
                            allow_private=True)  # fmt: skip
    assert allowed.verify() == radicale.home_url


@pytest.fixture
def redirecting_server() -> Iterator[ServedApp]:
    """A DAV server (on loopback) that sends every request on to the metadata service."""

    async def redirect(request: Request) -> Response:
        return Response(status_code=301, headers={"Location": "http://169.254.169.254/latest/"})

    app = Starlette(routes=[Route("/{path:path}", redirect, methods=["PROPFIND", "GET"])])
    served = serve_in_thread(app)
    yield served
    served.stop()


def test_a_redirect_to_the_metadata_service_is_not_followed(
    redirecting_server: ServedApp,
) -> None:
    counter = CallCounter()
    account = CalDAVAccount(f"http://127.0.0.1:{redirecting_server.port}/dav/", "me", "pw",
                            allow_private=True, before_request=counter)  # fmt: skip
    with pytest.raises(UnsafeAddress) as refused:
        account.verify()
    assert "169.254.169.254" in str(refused.value)
    # The hop was counted like any request; its connection is what the guard refused.
    assert counter.calls == 2
