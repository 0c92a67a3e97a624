"""Cursor paging as Wix pages its lists: `cursorPaging.limit` and `cursorPaging.cursor` in,
`pagingMetadata` out. A cursor is opaque to the caller and carries both the query it pages
and where the last page ended, so a follow-up request needs nothing else."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Query

from api.errors import bad_request
from api.external_calendars.schema import Cursors, PagingMetadata
from models.signing import b64decode, b64encode

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
CURSOR_FIELD = "cursorPaging.cursor"

Limit = Annotated[int, Query(alias="cursorPaging.limit", ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(alias=CURSOR_FIELD, max_length=4096)]


def make_cursor(body: dict[str, Any]) -> str:
    return b64encode(json.dumps(body, separators=(",", ":")).encode())


def read_cursor(cursor: str) -> dict[str, Any]:
    try:
        body = json.loads(b64decode(cursor))
    except (ValueError, TypeError, RecursionError):
        raise not_a_cursor() from None
    if not isinstance(body, dict):
        raise not_a_cursor()
    return body


def not_a_cursor() -> Exception:
    return bad_request("not a cursor this API gave out", CURSOR_FIELD, "INVALID_CURSOR")


def paging_metadata(count: int, next_cursor: str | None) -> PagingMetadata:
    return PagingMetadata(count=count, cursors=Cursors(next=next_cursor),
                          hasNext=next_cursor is not None)  # fmt: skip
