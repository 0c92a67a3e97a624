"""Verifying and reading Wix webhooks. Pure: no network, no state.

The body is a JWT signed RS256 with the app's key; only RS256 is accepted (never `none`, never an
HMAC keyed with the public key), and the token must carry an unexpired `exp`. Its `data` claim is
a JSON string holding the envelope `{eventType, instanceId, data, identity}`, whose `data` and
`identity` are JSON strings again.

Idempotency: Calendar V3 webhooks carry an inner `id` that stays the same on Wix's retries
(each retry is signed afresh) and on replays; it is the webhook id. App events carry no id;
theirs is `<eventType>:<instanceId>:<iat>`, so a replay of the same body is recognised while
a later install of the same instance (after a removal) is not mistaken for a repeat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import jwt

ALGORITHM = "RS256"
EVENT_FQDN = "wix.calendar.v3.event"
LEEWAY_SECONDS = 30  # clock difference tolerated on `exp`
_PAYLOADS = {"created": ("createdEvent", "entity"), "updated": ("updatedEvent", "currentEntity"),
             "cancelled": ("actionEvent", "body")}  # fmt: skip


class WebhookKind(StrEnum):
    APP_INSTALLED = "AppInstalled"
    APP_REMOVED = "AppRemoved"
    EVENT_CREATED = "event_created"
    EVENT_UPDATED = "event_updated"
    EVENT_CANCELLED = "event_cancelled"
    OTHER = "other"  # a webhook calsync does not act on


class InvalidReason(StrEnum):
    MALFORMED = "malformed"  # not a JWT, or a payload that is not the documented envelope
    ALGORITHM = "algorithm"  # anything but RS256
    SIGNATURE = "signature"  # not signed by the app's key (or altered since)
    EXPIRED = "expired"
    KEY = "key"  # the configured public key is unusable


class InvalidWebhook(ValueError):
    """The body is not a genuine, current Wix webhook; `reason` says why."""

    def __init__(self, reason: InvalidReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason


@dataclass(frozen=True)
class WixWebhook:
    webhook_id: str  # the idempotency key
    kind: WebhookKind
    event_type: str
    instance_id: str
    issued_at: datetime
    identity: dict[str, Any] = field(default_factory=dict)
    app_id: str | None = None  # app events
    event_id: str | None = None  # event changes, and for them:
    schedule_id: str | None = None
    revision: str | None = None
    event: dict[str, Any] | None = None  # the Calendar V3 event as Wix sent it

    @property
    def revision_number(self) -> int | None:
        """The revision as a number, to tell a newer change from an older or repeated one."""
        try:
            return None if self.revision is None else int(self.revision)
        except ValueError:
            return None


def verify_webhook(
    body: bytes | str, public_key_pem: str, now: datetime | None = None
) -> WixWebhook:
    """The webhook in `body`, verified against the app's public key; `InvalidWebhook` if not."""
    token = body.decode("ascii", "replace") if isinstance(body, bytes) else body
    claims = _verified_claims(token.strip(), public_key_pem, now or datetime.now(UTC))
    try:
        return _read(claims)
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidWebhook(InvalidReason.MALFORMED, f"payload: {error}") from None


def _verified_claims(token: str, public_key_pem: str, now: datetime) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise InvalidWebhook(InvalidReason.MALFORMED, type(error).__name__) from None
    if header.get("alg") != ALGORITHM:
        raise InvalidWebhook(InvalidReason.ALGORITHM, f"{header.get('alg')!r} is not RS256")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, public_key_pem, algorithms=[ALGORITHM],
            options={"require": ["exp", "iat"], "verify_exp": False, "verify_iat": False},
        )  # fmt: skip
    except jwt.InvalidSignatureError:
        raise InvalidWebhook(InvalidReason.SIGNATURE, "signature does not verify") from None
    except jwt.InvalidKeyError as error:
        raise InvalidWebhook(InvalidReason.KEY, str(error)) from None
    except jwt.PyJWTError as error:
        raise InvalidWebhook(InvalidReason.MALFORMED, type(error).__name__) from None
    except ValueError as error:  # a PEM that is not a public key
        raise InvalidWebhook(InvalidReason.KEY, type(error).__name__) from None
    exp = claims["exp"]
    if not isinstance(exp, int | float) or now.timestamp() > exp + LEEWAY_SECONDS:
        raise InvalidWebhook(InvalidReason.EXPIRED, "the token's exp has passed")
    return claims


def _read(claims: dict[str, Any]) -> WixWebhook:
    envelope = _json_object(claims["data"], "data")
    inner = _json_object(envelope.get("data") or "{}", "data.data")
    event_type, instance_id = str(envelope["eventType"]), str(envelope["instanceId"])
    fallback_id = f"{event_type}:{instance_id}:{int(claims['iat'])}"
    webhook = WixWebhook(
        webhook_id=str(inner.get("id") or fallback_id), kind=WebhookKind.OTHER,
        event_type=event_type, instance_id=instance_id,
        issued_at=datetime.fromtimestamp(int(claims["iat"]), UTC),
        identity=_json_object(envelope.get("identity") or "{}", "data.identity"),
    )  # fmt: skip
    if event_type in (WebhookKind.APP_INSTALLED, WebhookKind.APP_REMOVED):
        app_id = inner.get("appId")
        return replace(webhook, kind=WebhookKind(event_type), app_id=app_id, webhook_id=fallback_id)
    slug = inner.get("slug")
    if inner.get("entityFqdn") != EVENT_FQDN or slug not in _PAYLOADS:
        return webhook
    event = _event_body(inner, str(slug))
    return replace(
        webhook, kind=WebhookKind(f"event_{slug}"),
        event_id=str(event.get("id") or inner.get("entityId")),
        schedule_id=event.get("scheduleId"),
        revision=None if event.get("revision") is None else str(event["revision"]),
        event=event,
    )  # fmt: skip


def _event_body(inner: dict[str, Any], slug: str) -> dict[str, Any]:
    member, key = _PAYLOADS[slug]
    payload = inner[member][key]
    event = payload.get("event") if slug == "cancelled" else payload
    if not isinstance(event, dict):
        raise ValueError(f"{member}.{key} holds no event")
    return event


def _json_object(value: Any, name: str) -> dict[str, Any]:
    """A nested `data` string parsed; an object sent as-is is accepted too (docs ambiguous)."""
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} is not a JSON object")
    return parsed
