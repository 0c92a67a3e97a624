"""Key rotation: re-encrypt every encrypted column under the current first key."""

from __future__ import annotations

from sqlalchemy import Engine, Text, bindparam, cast, select, update

from models.base import Base
from models.crypto import EncryptedJSON, keyring
from models.db import default_engine


def rotate_secrets(engine: Engine | None = None) -> int:
    """Returns how many values were rewritten. Safe to run twice."""
    engine = engine or default_engine()
    count = 0
    with engine.begin() as db:
        for table in Base.metadata.sorted_tables:
            primary = list(table.primary_key.columns)
            for column in (c for c in table.columns if isinstance(c.type, EncryptedJSON)):
                # Casting to Text reads and writes the raw tokens, bypassing decryption.
                rows = db.execute(select(*primary, cast(column, Text)).where(column.is_not(None)))
                for *key, token in rows.all():
                    match = [c == k for c, k in zip(primary, key, strict=True)]
                    fresh = bindparam("token", keyring.rotate(token), type_=Text())
                    db.execute(update(table).where(*match).values({column.name: fresh}))
                    count += 1
    return count
