"""Records that belong to a tenant through their connection (conflicts, dead letters): looked
up by id, and another tenant's is as unknown as a missing one (404)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import Caller
from api.errors import not_found
from models import Connection

Record = TypeVar("Record")


def owned(db: Session, caller: Caller, model: type[Record], record_id: str, field: str,
          what: str, *, lock: bool = False) -> Record:  # fmt: skip
    table: Any = model
    query = (
        select(model)
        .join(Connection, Connection.id == table.connection_id)
        .where(table.id == record_id, Connection.tenant_id == caller.tenant_id)
    )
    found = db.scalar(query.with_for_update(of=table) if lock else query)
    if found is None:
        raise not_found(field, what)
    return found
