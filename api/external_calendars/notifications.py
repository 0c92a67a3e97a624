"""`GET/PUT notification-settings` (calsync addition): who a business is told by when one of
its connections breaks (`tasks/alerts.py`): an email address, and a webhook whose deliveries
calsync signs with a secret it makes, shows once and keeps encrypted.

The webhook URL must be https to a public address, or point at this machine (loopback, where
http will do): the SSRF guard (`providers.netguard`) resolves it now, and the worker again
before each delivery.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request

from api.auth import CallerDep
from api.errors import bad_request, responses
from api.external_calendars.schema import (
    NotificationSettings,
    NotificationSettingsResponse,
    UpdateNotificationSettingsRequest,
)
from models import Tenant
from models.db import session_scope
from providers.netguard import UnresolvedHost, UnsafeAddress, check_webhook_url

router = APIRouter()
PATH = "/notification-settings"
SECRET_PREFIX = "cswh_"  # recognisable in a leak scan, like API keys


@router.get(
    PATH,
    summary="Break alert settings (calsync addition)",
    response_model=NotificationSettingsResponse,
    response_model_exclude_none=True,
    responses=responses(401, 403),
)
def read_notification_settings(caller: CallerDep, request: Request
                               ) -> NotificationSettingsResponse:  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        tenant = db.get(Tenant, caller.tenant_id)
        assert tenant is not None  # the caller's key was just looked up by it
        return NotificationSettingsResponse(notificationSettings=_settings_of(tenant))


@router.put(
    PATH,
    summary="Set break alert settings (calsync addition)",
    description="Replaces both settings (a field left out or null: nothing sent that way). "
    "Setting or changing the webhook URL, or `rotateWebhookSecret`, answers a new "
    "`webhookSecret`, shown this once.",
    response_model=NotificationSettingsResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403),
)
def update_notification_settings(
    body: UpdateNotificationSettingsRequest, caller: CallerDep, request: Request
) -> NotificationSettingsResponse:
    wanted = body.notificationSettings
    if wanted.webhookUrl is not None:
        _check_webhook(wanted.webhookUrl)
    elif body.rotateWebhookSecret:
        raise bad_request("there is no webhook URL to rotate the secret of", "rotateWebhookSecret",
                          "NOTHING_TO_ROTATE")  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        tenant = db.get(Tenant, caller.tenant_id, with_for_update=True)
        assert tenant is not None
        changed = wanted.webhookUrl != tenant.alert_webhook_url or body.rotateWebhookSecret
        fresh = SECRET_PREFIX + secrets.token_urlsafe(32) if wanted.webhookUrl and changed else None
        tenant.alert_email, tenant.alert_webhook_url = wanted.email, wanted.webhookUrl
        if fresh is not None or wanted.webhookUrl is None:
            tenant.alert_webhook_secret = fresh
        return NotificationSettingsResponse(
            notificationSettings=_settings_of(tenant), webhookSecret=fresh
        )


def _check_webhook(url: str) -> None:
    try:
        check_webhook_url(url)
    except (UnsafeAddress, UnresolvedHost) as refused:
        raise bad_request(str(refused), "notificationSettings.webhookUrl",
                          "ADDRESS_NOT_ALLOWED") from None  # fmt: skip


def _settings_of(tenant: Tenant) -> NotificationSettings:
    return NotificationSettings(email=tenant.alert_email, webhookUrl=tenant.alert_webhook_url)
