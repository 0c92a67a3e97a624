"""Sync tokens and page tokens.

A sync token names a calendar's change counter at the end of a listing; it expires after a
configurable lifetime, or when told to, and then answers 410 `fullSyncRequired`. A page token holds
a snapshot of the remaining results, taken when the first page was asked for, so entries changed
while a client pages are not lost: they are newer than the snapshot's counter and show up in the
next incremental listing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .errors import bad_request, full_sync_required

MAX_PAGE_CURSORS = 10_000


@dataclass
class SyncCursor:
    calendar_id: str
    seq: int
    issued_at: datetime
    expired: bool = False


@dataclass
class PageCursor:
    calendar_id: str
    items: list[dict[str, Any]]  # shared by all pages of one listing
    offset: int
    seq: int  # change counter the snapshot was taken at


class Cursors:
    def __init__(self) -> None:
        self._sync: dict[str, SyncCursor] = {}
        self._pages: dict[str, PageCursor] = {}

    def issue_sync_token(self, calendar_id: str, seq: int, now: datetime) -> str:
        token = "C" + secrets.token_urlsafe(18)
        self._sync[token] = SyncCursor(calendar_id, seq, now)
        return token

    def resolve_sync_token(
        self, token: str, calendar_id: str, now: datetime, lifetime: float | None
    ) -> SyncCursor:
        cursor = self._sync.get(token)
        if cursor is None or cursor.calendar_id != calendar_id or cursor.expired:
            raise full_sync_required()
        if lifetime is not None and now - cursor.issued_at > timedelta(seconds=lifetime):
            raise full_sync_required()
        return cursor

    def expire_sync_tokens(self, calendar_id: str | None = None, token: str | None = None) -> int:
        """Invalidate tokens (all, one calendar's, or one); returns how many were live."""
        count = 0
        for key, cursor in self._sync.items():
            if calendar_id not in (None, cursor.calendar_id) or token not in (None, key):
                continue
            count += not cursor.expired
            cursor.expired = True
        return count

    def issue_page_token(self, cursor: PageCursor) -> str:
        if len(self._pages) >= MAX_PAGE_CURSORS:
            self._pages.pop(next(iter(self._pages)))  # the oldest goes first
        token = "P" + secrets.token_urlsafe(18)
        self._pages[token] = cursor
        return token

    def page_cursor(self, token: str, calendar_id: str) -> PageCursor:
        # Not consumed: a client may ask for the same page again after a failure.
        cursor = self._pages.get(token)
        if cursor is None or cursor.calendar_id != calendar_id:
            raise bad_request("Invalid page token value.", location="pageToken")
        return cursor
