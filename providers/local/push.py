"""The local store's push notifications: a JSON body naming the calendar, the change's message
number, the event and its new version, signed with HMAC-SHA256 under the channel's secret."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from providers.push import Delivery, Notice, Reply, Tally, same_secret


class StoreReceiver:
    def handshake(self, delivery: Delivery) -> Reply | None:
        return None

    def notices(self, delivery: Delivery) -> list[Notice]:
        channel_id = delivery.headers.get("x-store-channel", "")
        body = _json(delivery.body)
        message = body.get("message")
        if not isinstance(message, int) or isinstance(message, bool):
            return [Notice(channel_id, "", readable=False)]
        event_id, version = _text(body.get("event")), _text(body.get("version"))
        payload = {"channel": channel_id, "message": message, "event": event_id,
                   "version": version}  # fmt: skip
        return [Notice(channel_id, f"{channel_id}:{message}", payload=payload,
                       event_id=event_id, version=version)]  # fmt: skip

    def genuine(self, notice: Notice, delivery: Delivery, secret: str) -> bool:
        expected = hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest()
        return same_secret(delivery.headers.get("x-store-signature"), expected)

    def answer(self, tally: Tally) -> Reply:
        if tally.unknown or tally.forged:
            return Reply(401, "unknown channel or bad signature")
        if tally.unreadable:
            return Reply(400, "not a store notification")
        if tally.stale:
            return Reply(200, {"duplicate": False, "ignored": True})
        if tally.echoes:
            return Reply(200, {"duplicate": False, "echo": True})
        return Reply(200, {"duplicate": bool(tally.duplicates)})


RECEIVER = StoreReceiver()


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
