"""What connecting by OAuth needs from a calendar system: is it configured, where is its consent
page, and how a code becomes tokens (the one synchronous provider call the API makes for it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from config import Settings
from providers.base import CalendarInfo


@dataclass(frozen=True)
class SignedIn:
    """The account the user signed in to: its email, the credentials to store (encrypted),
    when the access token expires, and its primary calendar when the sign-in tells it (None:
    a worker lists the account's calendars first, `Capabilities.primary_after_connect`)."""

    email: str
    credentials: Mapping[str, Any]
    expires_at: datetime | None
    primary: CalendarInfo | None


@dataclass(frozen=True)
class OAuthFlow:
    configured: Callable[[Settings], bool]
    consent_url: Callable[[Settings, str, str], str]  # settings, redirect_uri, state
    exchange: Callable[[Settings, str, str], SignedIn]  # settings, code, redirect_uri
