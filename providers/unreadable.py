"""Reading one event without trusting it: an event that lacks fields or holds values no event
can have comes back as unreadable (its copies are kept, and it is reported) instead of failing
the listing of the whole calendar or passing for deleted."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sync.snapshot import RemoteEvent

log = logging.getLogger(__name__)

# What reading a provider's event raises when the event, not the provider, is broken.
READ_ERRORS = (KeyError, ValueError, TypeError, AttributeError, IndexError)


def read_or_unreadable(
    event_id: str, version: str | None, read: Callable[[], RemoteEvent]
) -> RemoteEvent:
    try:
        return read()
    except READ_ERRORS as error:
        return unreadable_item(event_id, version, error)


def unreadable_item(event_id: str, version: str | None, error: Exception) -> RemoteEvent:
    why = because(error)
    log.warning("cannot read event %s: %s", event_id, why)
    return RemoteEvent.unread(event_id, why, version)


def because(error: Exception) -> str:
    if isinstance(error, KeyError) and error.args:
        return f"missing field {error.args[0]!r}"
    return f"{type(error).__name__}: {error}"[:200]
