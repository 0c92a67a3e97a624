"""DNS rebinding (issue 18): the address the SSRF guard judged is the address connected to, for
the CalDAV client and for the break-alert webhook.

`dns` stands in for a hostile DNS server: `socket.getaddrinfo` answers names under `.test`
(RFC 6761) from a script, one answer per lookup, so a name can be public to the check and
loopback to the connection; real DNS is never asked. The addresses beyond loopback in the
script are never reached: the suite's loopback guard (tests/conftest.py) refuses them and fails
the test that tried."""

from __future__ import annotations

import ipaddress
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import new_calendar
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from harness.caldav_servers import event_ics

from models.enums import BreakReason
from providers.base import CalendarInfo, SyncWindow
from providers.caldav.account import CalDAVAccount
from providers.netguard import UnsafeAddress, check_webhook_url
from sandbox.caldav_servers import CalDAVServer
from sandbox.graph.tls import TlsFiles, serve_tls_in_thread
from sandbox.server import ServedApp, serve_in_thread
from sync.event import CanonicalEvent
from tasks.alerts import post
from tasks.break_news import BreakNews

PUBLIC = "17.253.144.10"  # an address of Apple's
METADATA = "169.254.169.254"
NEWS = BreakNews(
    alert_id="alert-1", reason=BreakReason.TOKEN_REVOKED, broken_at=datetime.now(UTC),
    business="Studio", instance_id="instance-1", connection_id="connection-1",
    connection_status="ERROR", provider_id="caldav", provider_name="CalDAV", account=None,
    schedule_id="schedule-1", calendars=["Work"], failed_runs=1,
)  # fmt: skip
_REAL_GETADDRINFO = socket.getaddrinfo


@dataclass
class ScriptedDNS:
    """Answers for names under `.test`: each lookup takes the next address, the last repeats."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    lookups: Counter[str] = field(default_factory=Counter)

    def answer(self, name: str, *addresses: str) -> None:
        self.answers[name] = list(addresses)

    def getaddrinfo(self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                    flags: int = 0) -> list[Any]:  # fmt: skip
        name = host.decode() if isinstance(host, bytes) else host
        if not (isinstance(name, str) and name.endswith(".test")):
            return _REAL_GETADDRINFO(host, port, family, type, proto, flags)
        self.lookups[name] += 1
        script = self.answers.get(name)
        if not script:
            raise socket.gaierror(socket.EAI_NONAME, f"{name} is not in the script")
        address = script.pop(0) if len(script) > 1 else script[0]
        if ipaddress.ip_address(address).version == 6:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> ScriptedDNS:
    scripted = ScriptedDNS()
    monkeypatch.setattr(socket, "getaddrinfo", scripted.getaddrinfo)
    return scripted


@dataclass
class Receiver:
    """An HTTP server on loopback that answers 204 to anything and records what reached it."""

    served: ServedApp
    seen: list[tuple[str, str]]  # (method, Host header)

    @property
    def port(self) -> int:
        return self.served.port


def receiver(tls: TlsFiles | None = None) -> Receiver:
    seen: list[tuple[str, str]] = []

    async def record(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((scope["method"], dict(scope["headers"]).get(b"host", b"").decode()))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    if tls is None:
        return Receiver(serve_in_thread(record, lifespan="off"), seen)
    return Receiver(serve_tls_in_thread(record, tls, lifespan="off"), seen)


@pytest.fixture
def listener() -> Iterator[Receiver]:
    served = receiver()
    yield served
    served.served.stop()


@pytest.mark.parametrize(
    ("allow_private", "checked", "connected"),
    [(False, PUBLIC, "127.0.0.1"), (True, "127.0.0.1", METADATA)],
    ids=["public-then-loopback", "loopback-allowed-then-metadata"],
)
def test_a_caldav_host_that_rebinds_after_the_check_is_refused_before_a_byte_is_sent(
    dns: ScriptedDNS, listener: Receiver, allow_private: bool, checked: str, connected: str
) -> None:
    dns.answer("dav.rebind.test", checked, connected)
    account = CalDAVAccount(f"http://dav.rebind.test:{listener.port}/dav/", "me", "pw",
                            allow_private=allow_private)  # fmt: skip  # the check passes

    with pytest.raises(UnsafeAddress) as refused:
        account.verify()

    assert f"dav.rebind.test resolves to {connected}" in str(refused.value)
    assert dns.lookups["dav.rebind.test"] == 2  # the check's, then the connection's, judged
    assert listener.seen == []


def test_a_caldav_sync_by_host_name_through_the_guard(
    dns: ScriptedDNS, radicale: CalDAVServer
) -> None:
    """Radicale on loopback, reached by a name: the Host header keeps the name, and a sync
    (the person's event listed, ours written) works on the guarded connections."""
    dns.answer("dav.pinned.test", "127.0.0.1")
    person = new_calendar(radicale)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    window = SyncWindow(start - timedelta(days=7), start + timedelta(days=7))
    person.add_event(event_ics("theirs", start, start + timedelta(hours=1), "Dentist"))

    def by_name(url: str) -> str:
        return url.replace("127.0.0.1", "dav.pinned.test", 1)

    account = CalDAVAccount(by_name(radicale.base_url), radicale.username, radicale.password,
                            allow_private=True)  # fmt: skip
    calendar = account.calendar(CalendarInfo(by_name(str(person.url))), window)
    ours = CanonicalEvent("Session: yoga", start + timedelta(hours=2), start + timedelta(hours=3))
    calendar.create(ours, "link:0", marker="calsync:c:link")
    listed = calendar.list_changes(None)
    account.close()

    assert sorted(i.event.title for i in listed.changes if i.event) == ["Dentist", "Session: yoga"]
    assert "Session: yoga" in [str(e.icalendar_component["SUMMARY"]) for e in person.get_events()]
    assert dns.lookups["dav.pinned.test"] >= 2  # the check, then the connection's own lookup


def test_a_webhook_is_posted_to_the_address_its_check_judged(
    dns: ScriptedDNS, listener: Receiver
) -> None:
    """Plain http is allowed to loopback only: a receiver here at the check, a private
    address at any later lookup. The POST goes to the address judged, after one lookup."""
    dns.answer("hook.rebind.test", "127.0.0.1", "10.0.0.7")
    post(f"http://hook.rebind.test:{listener.port}/alerts", "secret", NEWS)

    assert listener.seen == [("POST", f"hook.rebind.test:{listener.port}")]
    assert dns.lookups["hook.rebind.test"] == 1


def test_a_webhook_host_that_rebinds_to_the_metadata_service_is_never_posted(
    dns: ScriptedDNS,
) -> None:
    dns.answer("hook.rebind.test", PUBLIC, METADATA)
    url = "https://hook.rebind.test/alerts"
    check_webhook_url(url)  # when the tenant set it: a public address

    with pytest.raises(UnsafeAddress) as refused:
        post(url, "secret", NEWS)

    assert f"resolves to {METADATA}" in str(refused.value)


def test_a_pinned_webhook_still_checks_the_certificate_against_the_host_name(
    dns: ScriptedDNS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The certificate names one host only, no address: it passes only if TLS (SNI and the
    name checked) uses the host while the connection goes to the pinned address. A second
    host on the same address never rides the first one's verified connection."""
    dns.answer("hook.pinned.test", "127.0.0.1")
    dns.answer("other.pinned.test", "127.0.0.1")
    tls = certificate_for("hook.pinned.test", tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", tls.ca_path)  # the CA httpx trusts, as an operator would
    served = receiver(tls)
    try:
        post(f"https://hook.pinned.test:{served.port}/alerts", "secret", NEWS)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            post(f"https://other.pinned.test:{served.port}/alerts", "secret", NEWS)
    finally:
        served.served.stop()

    assert served.seen == [("POST", f"hook.pinned.test:{served.port}")]


def certificate_for(name: str, folder: Path) -> TlsFiles:
    """A self-signed certificate for `name` alone, its own CA, valid for a day from now."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(Encoding.PEM))
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return TlsFiles(str(cert_path), str(cert_path), str(key_path))
