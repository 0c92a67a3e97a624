"""Parsing Graph's change and lifecycle notifications (reference §2.1). Pure: no network.

A POST carries `{"value": [...]}`, possibly for several subscriptions. Every item's
`clientState` is compared, in constant time, with the one stored for its subscription; an item
that fails is dropped and counted, so the API can log it and refuse the request when nothing was
valid. A notification is a hint: it names the event, the worker pulls the delta.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from providers.microsoft_time import parse_instant

ClientStateFor = Callable[[str], str | None]  # subscription id -> the clientState stored for it


class MalformedNotification(ValueError):
    """The body is not a notification collection (answer 400)."""


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


def parse_notifications(
    body: bytes, client_state_for: ClientStateFor
) -> tuple[list[ChangeNotice], int]:
    """(valid change notices, how many items were rejected). Lifecycle items are skipped."""
    changes = [item for item in _items(body) if "lifecycleEvent" not in item]
    return _checked(changes, client_state_for, _change)


def parse_lifecycle(
    body: bytes, client_state_for: ClientStateFor
) -> tuple[list[LifecycleNotice], int]:
    """(valid lifecycle notices, how many items were rejected)."""
    return _checked(_items(body), client_state_for, _lifecycle)


N = TypeVar("N")


def _checked(items: list[dict[str, Any]], client_state_for: ClientStateFor,
             read: Callable[[dict[str, Any]], N | None]) -> tuple[list[N], int]:  # fmt: skip
    """The items that carry their subscription's clientState and read as notices; the rest
    are counted."""
    notices = [read(item) if _trusted(item, client_state_for) else None for item in items]
    valid = [notice for notice in notices if notice is not None]
    return valid, len(notices) - len(valid)


def _items(body: bytes) -> list[dict[str, Any]]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedNotification("not JSON") from None
    items = payload.get("value") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise MalformedNotification("no value array")
    return [item for item in items if isinstance(item, dict)]


def _trusted(item: dict[str, Any], client_state_for: ClientStateFor) -> bool:
    subscription_id, given = item.get("subscriptionId"), item.get("clientState")
    if not isinstance(subscription_id, str) or not isinstance(given, str):
        return False
    expected = client_state_for(subscription_id)
    if expected is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _change(item: dict[str, Any]) -> ChangeNotice | None:
    change_type, resource = item.get("changeType"), item.get("resource")
    if not isinstance(change_type, str) or not isinstance(resource, str):
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
