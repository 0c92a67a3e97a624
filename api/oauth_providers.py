"""The OAuth providers, as a table of what the API needs from each: is it configured, where is
its consent page, and how a code becomes tokens (the one synchronous provider call made at
connect time besides the credentials check).

Each flow returns the account the user signed in to as `SignedIn`: its email, the credentials
to store (encrypted, in the provider module's own format), when the access token expires and
the account's primary calendar (Google: the calendar id is the account's email; Microsoft: the
default calendar, whose id a worker reads before the first sync, `tasks.connections.first_sync`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from config import Settings
from models import PRIMARY_PLACEHOLDER, Provider
from providers.base import CalendarInfo


@dataclass(frozen=True)
class SignedIn:
    email: str
    credentials: dict[str, Any]
    expires_at: datetime | None
    primary: CalendarInfo


@dataclass(frozen=True)
class OAuthFlow:
    configured: Callable[[Settings], bool]
    consent_url: Callable[[Settings, str, str], str]  # settings, redirect_uri, state
    exchange: Callable[[Settings, str, str], SignedIn]  # settings, code, redirect_uri


def callback_url(settings: Settings, provider: Provider) -> str:
    """Where the provider sends the user back; register it with the provider's OAuth client."""
    return f"{str(settings.public_base_url).rstrip('/')}/oauth/{provider.value}/callback"


def _google_configured(settings: Settings) -> bool:
    return bool(settings.google_client_id and settings.google_client_secret.get_secret_value())


def _google_consent(settings: Settings, redirect_uri: str, state: str) -> str:
    from providers import google_auth

    return google_auth.consent_url(
        settings.google_client_id, redirect_uri, state, str(settings.google_auth_url)
    )


def _google_exchange(settings: Settings, code: str, redirect_uri: str) -> SignedIn:
    from providers import google_auth

    client = google_auth.GoogleOAuthClient(
        settings.google_client_id, settings.google_client_secret.get_secret_value(),
        str(settings.google_token_url),
    )  # fmt: skip
    tokens = google_auth.exchange_code(code, redirect_uri, client)
    primary = CalendarInfo(remote_id=tokens.email, name=tokens.email, read_only=False, primary=True)
    return SignedIn(tokens.email, tokens.to_dict(), tokens.expiry, primary)


def _microsoft_configured(settings: Settings) -> bool:
    return bool(
        settings.microsoft_client_id and settings.microsoft_client_secret.get_secret_value()
    )


def _microsoft_consent(settings: Settings, redirect_uri: str, state: str) -> str:
    from providers.microsoft_auth import MicrosoftAuth

    return MicrosoftAuth.from_settings(settings).consent_url(redirect_uri, state)


def _microsoft_exchange(settings: Settings, code: str, redirect_uri: str) -> SignedIn:
    from providers.microsoft_auth import MicrosoftAuth

    tokens = MicrosoftAuth.from_settings(settings).exchange_code(code, redirect_uri)
    primary = CalendarInfo(PRIMARY_PLACEHOLDER, name="Calendar", read_only=False, primary=True)
    return SignedIn(tokens.username, tokens.to_dict(), tokens.expires_at, primary)


FLOWS: dict[Provider, OAuthFlow] = {
    Provider.GOOGLE: OAuthFlow(_google_configured, _google_consent, _google_exchange),
    Provider.MICROSOFT: OAuthFlow(_microsoft_configured, _microsoft_consent, _microsoft_exchange),
}
