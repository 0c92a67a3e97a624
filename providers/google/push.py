"""Google's push notifications: reading and checking the `X-Goog-*` headers.

A notification has no body; it only says "this calendar changed" (`exists`), or "the channel is
open" (`sync`, message number 1). It is genuine when the channel is one of ours and it carries
the token we gave the channel, compared in constant time. The webhook answers 200 to an unknown
or expired channel (Google then stops sending), 401 to a wrong token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from providers.push import Delivery, Notice, Reply, Tally, same_secret

STATES = frozenset({"sync", "exists", "not_exists"})


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


class GoogleReceiver:
    """`X-Goog-*` headers into one notice; the channel token is its proof."""

    def handshake(self, delivery: Delivery) -> Reply | None:
        return None

    def notices(self, delivery: Delivery) -> list[Notice]:
        headers = delivery.headers
        channel_id = headers.get("x-goog-channel-id", "").strip()
        token = headers.get("x-goog-channel-token")
        note = _read(channel_id, headers)
        if note is None:
            return [Notice(channel_id, "", proof=token, readable=False)]
        payload = {"channel": note.channel_id, "message": note.message_number,
                   "state": note.state}  # fmt: skip
        return [Notice(channel_id, note.idempotency_key, payload=payload, proof=token,
                       opening=note.is_sync)]  # fmt: skip

    def genuine(self, notice: Notice, delivery: Delivery, secret: str) -> bool:
        return same_secret(notice.proof, secret)

    def answer(self, tally: Tally) -> Reply:
        """A channel Google should forget gets 200, so it stops sending; a wrong token 401."""
        if tally.forged:
            return Reply(401, "notification with the wrong channel token")
        if tally.unreadable:
            return Reply(400, "notification headers Google never sends like that")
        if tally.unknown or tally.stale:
            return Reply(200, {"ignored": "unknown_channel"})
        if tally.openings:
            return Reply(200, {"sync": True})
        return Reply(200, {"duplicate": bool(tally.duplicates)})


RECEIVER = GoogleReceiver()


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
