"""Graph change-notification subscriptions, through O365's `Subscriptions`.

Graph validates both the notification and the lifecycle URL before it answers a create (the API
layer answers the `validationToken` handshake); a failed handshake is a 400, raised here as
`SubscriptionRefused`.
Renewing is a PATCH of `expirationDateTime` (it also reauthorizes); a subscription Graph no longer
has answers 404 -> `NotFound`, and the caller creates a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from providers.errors import NotFound, PermanentError, PermanentReason, ProviderError
from providers.microsoft.http import GraphClient
from providers.microsoft.timezones import parse_instant

CHANGE_TYPES = ("created", "updated", "deleted")
EVENTS_RESOURCE = "/me/events"  # every calendar of the mailbox (per-calendar paths: docs silent)


class SubscriptionRefused(ProviderError):
    """Graph would not create the subscription (failed validation handshake, bad request)."""


@dataclass(frozen=True)
class Subscription:
    id: str
    expires_at: datetime
    resource: str = EVENTS_RESOURCE


def subscribe(
    client: GraphClient,
    resource: str,
    notification_url: str,
    lifecycle_url: str | None,
    client_state: str,
    expires_at: datetime,
    change_types: Sequence[str] = CHANGE_TYPES,
) -> Subscription:
    subscriptions = client.account.subscriptions()

    def create() -> dict[str, Any] | None:
        created: dict[str, Any] | None = subscriptions.create_subscription(
            notification_url,
            resource=resource,
            change_type=list(change_types),
            expiration_datetime=expires_at,
            client_state=client_state,
            lifecycle_notification_url=lifecycle_url,
        )
        return created

    try:
        return _subscription(client.run(create), resource)
    except PermanentError as error:
        if error.reason is PermanentReason.INVALID_EVENT:  # a 400 (e.g. the handshake failed)
            raise SubscriptionRefused(str(error)) from None
        raise


def renew(client: GraphClient, subscription_id: str, expires_at: datetime) -> Subscription:
    subscriptions = client.account.subscriptions()

    def patch() -> dict[str, Any] | None:
        renewed: dict[str, Any] | None = subscriptions.renew_subscription(
            subscription_id, expiration_datetime=expires_at
        )
        return renewed

    return _subscription(client.run(patch), None)


def unsubscribe(client: GraphClient, subscription_id: str) -> None:
    subscriptions = client.account.subscriptions()
    try:
        client.run(lambda: subscriptions.delete_subscription(subscription_id))
    except NotFound:
        return  # Graph no longer has it: done


def _subscription(data: dict[str, Any] | None, resource: str | None) -> Subscription:
    if not data or "id" not in data:
        raise NotFound("Graph answered without a subscription")
    expires = parse_instant(data.get("expirationDateTime"))
    if expires is None:
        raise NotFound("a subscription without expirationDateTime")
    return Subscription(str(data["id"]), expires, str(data.get("resource") or resource or ""))
