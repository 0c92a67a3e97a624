"""TLS for the sandbox's login endpoints, because MSAL only accepts `https://` authorities.

`make_tls()` creates, at start, a throwaway CA and a certificate for 127.0.0.1/localhost signed by
it. Clients trust the CA file `tls.ca_path`. For MSAL pass `http_client=trusting_session(tls)`:
MSAL's own `verify=` lands on `Session.verify`, which requests silently replaces with
`REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE` when those are set (they are on many machines and in CI).
"""

from __future__ import annotations

import ipaddress
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sandbox.server import Lifespan, ServedApp, serve_in_thread


@dataclass(frozen=True)
class TlsFiles:
    ca_path: str  # PEM of the CA to trust
    cert_path: str  # server certificate (PEM)
    key_path: str  # server private key (PEM, unencrypted)


_CA_NAME = "calsync graph sandbox CA"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_tls(directory: str | None = None) -> TlsFiles:
    """Write a CA and a 127.0.0.1/localhost server certificate (valid one day) to `directory`."""
    folder = Path(directory or tempfile.mkdtemp(prefix="graph-sandbox-tls-"))
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(_CA_NAME)).issuer_name(_name(_CA_NAME))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    files = TlsFiles(str(folder / "ca.pem"), str(folder / "server.pem"), str(folder / "server.key"))
    Path(files.ca_path).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    Path(files.cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(files.key_path).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    return files


def trusting_session(tls: TlsFiles) -> requests.Session:
    """A requests session that trusts the sandbox CA and ignores the environment's CA bundle
    and proxy settings (only loopback is ever contacted)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = tls.ca_path
    return session


def serve_tls_in_thread(
    app: Any, tls: TlsFiles, host: str = "127.0.0.1", port: int = 0, lifespan: Lifespan = "on"
) -> ServedApp:
    """`sandbox.server.serve_in_thread` over HTTPS with the sandbox certificate."""
    return serve_in_thread(app, host, port, ssl_certfile=tls.cert_path, ssl_keyfile=tls.key_path,
                           lifespan=lifespan)  # fmt: skip
