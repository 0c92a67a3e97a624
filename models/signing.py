"""Signing keys derived from the encryption keys, one per purpose (OAuth state, approval links).

HKDF gives each purpose its own key, so a signature made for one purpose never verifies for
another, and no extra secret needs configuring. The first encryption key signs; every key
verifies, so rotating the encryption keys does not break links already handed out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from config import Settings
from models.crypto import EncryptionKeyError


def derived_keys(settings: Settings, purpose: str) -> list[bytes]:
    """The signing keys for `purpose`; the first one signs."""
    if not settings.encryption_keys:
        raise EncryptionKeyError("CALSYNC_ENCRYPTION_KEYS is empty: nothing can be signed")
    return [_derive(key.get_secret_value(), purpose) for key in settings.encryption_keys]


def _derive(fernet_key: str, purpose: str) -> bytes:
    material = base64.urlsafe_b64decode(fernet_key.encode("ascii"))
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"calsync:{purpose}".encode())
    return hkdf.derive(material)


def sign(key: bytes, message: bytes) -> str:
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return b64encode(digest)


def verify(keys: list[bytes], message: bytes, signature: str) -> bool:
    return any(hmac.compare_digest(sign(key, message), signature) for key in keys)


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Url-safe base64 without padding; ValueError for anything else."""
    if not text or any(c not in _ALPHABET for c in text):
        raise ValueError("not url-safe base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
