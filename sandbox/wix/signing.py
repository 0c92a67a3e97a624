"""The app's webhook signing key and the JWTs made with it, genuine or deliberately broken.

Wix signs each webhook body as an RS256 JWT whose header is `{"kid", "alg"}`. The
tokens are assembled by hand rather than with pyjwt so that the broken variants (alg `none`, HS256
keyed with the public PEM) can be made at all: pyjwt refuses to produce them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

Forgery = Literal["other_key", "alg_none", "hs256", "expired", "tampered"]
FORGERIES: tuple[Forgery, ...] = ("other_key", "alg_none", "hs256", "expired", "tampered")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _json_b64(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass
class SigningKey:
    """An RSA key pair with the short `kid` Wix puts in the JWT header."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(private_key=key, kid=secrets.token_urlsafe(6))

    @property
    def public_key_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def sign(self, claims: dict[str, Any]) -> str:
        signing_input = f"{_json_b64({'kid': self.kid, 'alg': 'RS256'})}.{_json_b64(claims)}"
        signature = self.private_key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64(signature)}"


def claims(data: str, now: datetime, lifetime: timedelta) -> dict[str, Any]:
    """The outer claims: `data` is the envelope as a JSON string."""
    issued = int(now.timestamp())
    return {"data": data, "iat": issued, "exp": issued + int(lifetime.total_seconds())}


_intruder: SigningKey | None = None


def _intruder_key(kid: str) -> SigningKey:
    """A key that is not the app's; made once because RSA generation is slow-ish."""
    global _intruder
    if _intruder is None:
        _intruder = SigningKey.generate()
    return SigningKey(private_key=_intruder.private_key, kid=kid)


def forge(kind: Forgery, key: SigningKey, data: str, now: datetime, lifetime: timedelta) -> str:
    """A token a verifier must reject, of the named kind, carrying `data`."""
    fresh = claims(data, now, lifetime)
    if kind == "other_key":
        return _intruder_key(key.kid).sign(fresh)
    if kind == "alg_none":
        return f"{_json_b64({'kid': key.kid, 'alg': 'none'})}.{_json_b64(fresh)}."
    if kind == "hs256":
        # The classic key-confusion attack: HMAC keyed with the verifier's public key.
        signing_input = f"{_json_b64({'kid': key.kid, 'alg': 'HS256'})}.{_json_b64(fresh)}"
        digest = hmac.new(key.public_key_pem.encode(), signing_input.encode(), hashlib.sha256)
        return f"{signing_input}.{_b64(digest.digest())}"
    if kind == "expired":
        return key.sign(claims(data, now - 2 * lifetime - timedelta(minutes=5), lifetime))
    if kind == "tampered":
        header, _, signature = key.sign(fresh).split(".")
        altered = dict(fresh, exp=fresh["exp"] + 86400)  # any change breaks the signature
        return f"{header}.{_json_b64(altered)}.{signature}"
    raise ValueError(f"unknown forgery {kind!r}")
