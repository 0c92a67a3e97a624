"""Opaque identifiers shaped like Graph's (base64url item ids, base64 change keys, GUIDs)."""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from datetime import UTC, datetime

_OCCURRENCE_PREFIX = "AAMkOC"


def item_id() -> str:
    """An event id like Graph's: base64url text ending in `=` (clients must URL-quote it)."""
    return "AAMkAG" + base64.urlsafe_b64encode(os.urandom(33)).decode() + "AAA="


def change_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def guid() -> str:
    return str(uuid.uuid4())


def occurrence_id(master_id: str, original_start: datetime) -> str:
    """Occurrence ids are derived from the series and the original start, so they stay stable."""
    raw = f"{master_id}|{original_start.astimezone(UTC):%Y%m%dT%H%M%SZ}".encode()
    return _OCCURRENCE_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_occurrence_id(value: str) -> tuple[str, datetime] | None:
    if not value.startswith(_OCCURRENCE_PREFIX):
        return None
    body = value[len(_OCCURRENCE_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        master, _, stamp = raw.rpartition("|")
        start = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (master, start) if master else None


def ical_uid() -> str:
    """Outlook's GlobalObjectId layout: class id, instance date (zero for a master), then data."""
    return "040000008200E00074C5B7101A82E008" + "00000000" + os.urandom(24).hex().upper()


def occurrence_ical_uid(master_uid: str, day: datetime) -> str:
    """Per the event reference the iCalUId differs for each occurrence: swap the date bytes in."""
    return master_uid[:32] + f"{day.year:04X}{day.month:02X}{day.day:02X}" + master_uid[40:]
