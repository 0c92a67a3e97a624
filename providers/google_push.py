"""Google's push notifications: reading and checking the `X-Goog-*` headers (reference §1.1).

A notification has no body; it only says "this calendar changed" (`exists`), or "the channel is
open" (`sync`, message number 1). It is genuine when the channel is one of ours and it carries
the token we gave the channel, compared in constant time. The webhook answers 200 to an unknown
or expired channel (Google then stops sending) and 401 to a wrong token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

STATES = frozenset({"sync", "exists", "not_exists"})


class Verdict(StrEnum):
    GENUINE = "genuine"
    UNKNOWN_CHANNEL = "unknown_channel"  # not ours, or no longer live: 200, nothing to do
    WRONG_TOKEN = "wrong_token"  # a known channel with the wrong token: 401
    MALFORMED = "malformed"  # the right token but headers Google never sends like that: 400


@dataclass(frozen=True)
class GoogleNotification:
    channel_id: str
    resource_id: str
    state: str  # sync | exists | not_exists
    message_number: int
    resource_uri: str | None = None
    channel_expires_at: datetime | None = None

    @property
    def is_sync(self) -> bool:
        """The handshake after `watch`: acknowledge, nothing changed."""
        return self.state == "sync"

    @property
    def idempotency_key(self) -> str:
        return f"{self.channel_id}:{self.message_number}"


@dataclass(frozen=True)
class NotificationCheck:
    verdict: Verdict
    notification: GoogleNotification | None = None

    @property
    def http_status(self) -> int:
        """What the webhook answers Google."""
        return {Verdict.WRONG_TOKEN: 401, Verdict.MALFORMED: 400}.get(self.verdict, 200)


def verify_notification(
    headers: Mapping[str, str], channel_token_for: Callable[[str], str | None]
) -> NotificationCheck:
    """Check one push. `channel_token_for(channel_id)` is the token of a live channel of ours,
    or None when there is no such channel."""
    lower = {key.lower(): value for key, value in headers.items()}
    channel_id = lower.get("x-goog-channel-id", "").strip()
    expected = channel_token_for(channel_id) if channel_id else None
    if expected is None:
        return NotificationCheck(Verdict.UNKNOWN_CHANNEL)
    given = lower.get("x-goog-channel-token", "")
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return NotificationCheck(Verdict.WRONG_TOKEN)
    notification = _read(channel_id, lower)
    if notification is None:
        return NotificationCheck(Verdict.MALFORMED)
    return NotificationCheck(Verdict.GENUINE, notification)


def _read(channel_id: str, headers: Mapping[str, str]) -> GoogleNotification | None:
    state = headers.get("x-goog-resource-state", "")
    number = headers.get("x-goog-message-number", "")
    resource_id = headers.get("x-goog-resource-id", "")
    if state not in STATES or not number.isdigit() or not resource_id:
        return None
    return GoogleNotification(
        channel_id=channel_id,
        resource_id=resource_id,
        state=state,
        message_number=int(number),
        resource_uri=headers.get("x-goog-resource-uri"),
        channel_expires_at=_http_date(headers.get("x-goog-channel-expiration")),
    )


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
