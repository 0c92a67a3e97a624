from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from models import Connection, Provider, Tenant
from models.crypto import EncryptionKeyError, keyring, new_key
from models.db import session_scope
from models.rotation import rotate_secrets


def add_connection(engine: Engine, credentials: dict[str, str]) -> str:
    with session_scope(engine) as db:
        tenant = Tenant(wix_instance_id="instance-1")
        db.add(tenant)
        db.flush()
        connection = Connection(
            tenant_id=tenant.id, provider=Provider.CALDAV, schedule_id="s1", credentials=credentials
        )
        db.add(connection)
        db.flush()
        return connection.id


def raw_credentials(engine: Engine, connection_id: str) -> str:
    with engine.connect() as db:
        return str(
            db.scalar(
                text("SELECT credentials FROM connections WHERE id = :id"), {"id": connection_id}
            )
        )


def load(engine: Engine, connection_id: str) -> dict[str, str] | None:
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None
        return connection.credentials


def test_secrets_are_stored_encrypted_and_read_back(engine: Engine) -> None:
    connection_id = add_connection(engine, {"password": "app-specific-pw"})
    stored = raw_credentials(engine, connection_id)
    assert "app-specific-pw" not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    assert load(engine, connection_id) == {"password": "app-specific-pw"}


def test_rotation_keeps_old_values_readable_and_retires_the_old_key(
    engine: Engine, session_key: str
) -> None:
    connection_id = add_connection(engine, {"refresh_token": "1//rt"})
    fresh = new_key()
    keyring.use([fresh, session_key])  # new key first, old key still decrypts
    assert load(engine, connection_id) == {"refresh_token": "1//rt"}
    assert rotate_secrets(engine) == 1
    keyring.use([fresh])  # the old key is gone
    assert load(engine, connection_id) == {"refresh_token": "1//rt"}


def test_a_value_no_key_can_open_is_a_clear_error(engine: Engine) -> None:
    connection_id = add_connection(engine, {"password": "x"})
    keyring.use([new_key()])
    with pytest.raises(EncryptionKeyError, match="no configured key"):
        load(engine, connection_id)


def test_no_keys_at_all_refuses_to_store_secrets() -> None:
    with pytest.raises(EncryptionKeyError, match="CALSYNC_ENCRYPTION_KEYS"):
        keyring.use([])
