"""Parsing Graph's change and lifecycle notifications. Pure: no network.

A POST carries `{"value": [...]}`, possibly for several subscriptions. Every item's
`clientState` is its proof, compared in constant time with the one stored for its subscription;
an item that fails is dropped and counted, and a request with no valid item is refused. A
notification is a hint: it names the event, the worker pulls the delta.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from providers.microsoft.timezones import parse_instant
from providers.push import (
    ChannelEvent,
    Delivery,
    MalformedDelivery,
    Notice,
    Reply,
    Tally,
    same_secret,
)


class LifecycleEvent(StrEnum):
    REAUTHORIZATION_REQUIRED = "reauthorizationRequired"  # reauthorize or renew
    SUBSCRIPTION_REMOVED = "subscriptionRemoved"  # create a new one, then resync
    MISSED = "missed"  # resync


@dataclass(frozen=True)
class ChangeNotice:
    subscription_id: str
    change_type: str  # created | updated | deleted
    resource: str
    event_id: str | None
    etag: str | None
    subscription_expires_at: datetime | None

    @property
    def idempotency_key(self) -> str:
        """Graph retries a delivery with the same content; the same change is one inbox row."""
        raw = "|".join([self.subscription_id, self.change_type, self.resource, self.etag or ""])
        return "msgraph:" + hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class LifecycleNotice:
    subscription_id: str
    event: LifecycleEvent
    subscription_expires_at: datetime | None

    def idempotency_key(self, received_at: datetime) -> str:
        """A lifecycle item has no id, and the same notice may rightly come again later (a
        second `missed` names the same subscription and expiry): the key holds the minute it
        arrived, so a resend within it is one row and a later one is acted on again (acting
        twice costs a renewal or a sync, never a change)."""
        expires = self.subscription_expires_at.isoformat() if self.subscription_expires_at else ""
        minute = received_at.strftime("%Y%m%dT%H%M")
        raw = "|".join([self.subscription_id, self.event.value, expires, minute])
        return "msgraph-lifecycle:" + hashlib.sha256(raw.encode()).hexdigest()


# What each lifecycle event asks of calsync.
LIFECYCLE_WORK = {
    LifecycleEvent.REAUTHORIZATION_REQUIRED: ChannelEvent.RENEW,  # a renewal also reauthorizes
    LifecycleEvent.SUBSCRIPTION_REMOVED: ChannelEvent.REOPEN,
    LifecycleEvent.MISSED: ChannelEvent.RESYNC,
}


class GraphReceiver:
    """Graph's notification collections; each item carries its subscription's clientState.

    `/webhooks/microsoft` takes change items (a lifecycle item there is skipped), and
    `/webhooks/microsoft/lifecycle` lifecycle items. A request in which no item passed its
    check is refused with 401; otherwise 202 with how many were recorded and rejected."""

    def handshake(self, delivery: Delivery) -> Reply | None:
        token = delivery.query.get("validationToken")
        return None if token is None else Reply(200, token, "text/plain")

    def notices(self, delivery: Delivery) -> list[Notice]:
        items = _items(delivery.body)
        if delivery.path == "lifecycle":
            return [_lifecycle_notice(item, datetime.now(UTC)) for item in items]
        return [_change_notice(item) for item in items if "lifecycleEvent" not in item]

    def genuine(self, notice: Notice, delivery: Delivery, secret: str) -> bool:
        return same_secret(notice.proof, secret)

    def answer(self, tally: Tally) -> Reply:
        rejected = tally.unknown + tally.forged + tally.unreadable
        if rejected and not tally.genuine:
            return Reply(401, "no item carried a valid clientState")
        return Reply(202, {"recorded": tally.recorded, "rejected": rejected})


RECEIVER = GraphReceiver()


def _change_notice(item: dict[str, Any]) -> Notice:
    change = _change(item)
    subscription_id, proof = _text(item.get("subscriptionId")) or "", _text(item.get("clientState"))
    if change is None:
        return Notice(subscription_id, "", proof=proof, readable=False)
    payload = {"subscription": change.subscription_id, "change": change.change_type,
               "event": change.event_id, "version": change.etag}  # fmt: skip
    return Notice(subscription_id, change.idempotency_key, payload=payload, proof=proof,
                  event_id=change.event_id, version=change.etag)  # fmt: skip


def _lifecycle_notice(item: dict[str, Any], received_at: datetime) -> Notice:
    notice = _lifecycle(item)
    subscription_id, proof = _text(item.get("subscriptionId")) or "", _text(item.get("clientState"))
    if notice is None:
        return Notice(subscription_id, "", proof=proof, readable=False)
    payload = {"subscription": notice.subscription_id, "lifecycle": notice.event.value}
    return Notice(subscription_id, notice.idempotency_key(received_at),
                  LIFECYCLE_WORK[notice.event], payload, proof)  # fmt: skip


def _items(body: bytes) -> list[dict[str, Any]]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nesting too deep to read
        raise MalformedDelivery("not JSON") from None
    items = payload.get("value") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise MalformedDelivery("no value array")
    return [item for item in items if isinstance(item, dict)]


def _change(item: dict[str, Any]) -> ChangeNotice | None:
    change_type, resource = item.get("changeType"), item.get("resource")
    if not isinstance(change_type, str) or not isinstance(resource, str):
        return None
    if not isinstance(item.get("subscriptionId"), str):
        return None
    data = item.get("resourceData") if isinstance(item.get("resourceData"), dict) else {}
    assert isinstance(data, dict)
    return ChangeNotice(
        subscription_id=str(item["subscriptionId"]),
        change_type=change_type,
        resource=resource,
        event_id=_text(data.get("id")),
        etag=_text(data.get("@odata.etag")),
        subscription_expires_at=_instant(item.get("subscriptionExpirationDateTime")),
    )


def _lifecycle(item: dict[str, Any]) -> LifecycleNotice | None:
    try:
        event = LifecycleEvent(str(item.get("lifecycleEvent")))
    except ValueError:
        return None
    if not isinstance(item.get("subscriptionId"), str):
        return None
    return LifecycleNotice(
        str(item["subscriptionId"]), event, _instant(item.get("subscriptionExpirationDateTime"))
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _instant(value: Any) -> datetime | None:
    try:
        return parse_instant(value) if isinstance(value, str) else None
    except ValueError:
        return None
