"""Encrypted columns: Fernet with several keys, so keys can be rotated without downtime."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from config import get_settings


class EncryptionKeyError(RuntimeError):
    pass


class Keyring:
    """The first key encrypts; every key is tried for decryption."""

    def __init__(self) -> None:
        self._fernet: MultiFernet | None = None

    def use(self, keys: list[str]) -> None:
        if not keys:
            raise EncryptionKeyError("CALSYNC_ENCRYPTION_KEYS is empty: secrets cannot be stored")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def _current(self) -> MultiFernet:
        if self._fernet is None:
            self.use([key.get_secret_value() for key in get_settings().encryption_keys])
        assert self._fernet is not None
        return self._fernet

    def encrypt(self, plaintext: bytes) -> str:
        return self._current().encrypt(plaintext).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        try:
            return self._current().decrypt(token.encode("ascii"))
        except InvalidToken:
            raise EncryptionKeyError("no configured key decrypts this value") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt under the first key (used by `calsync keys rotate`)."""
        return self._current().rotate(token.encode("ascii")).decode("ascii")


keyring = Keyring()


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value stored as a Fernet token; plaintext never reaches the database."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring.encrypt(json.dumps(value, separators=(",", ":")).encode())

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(keyring.decrypt(value))


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")
