"""The calendar system of Wix's v1 sync flow: Google only, by Wix's design (every v1 answer says
`calendar: GOOGLE`). It is the system whose listing is Wix's GOOGLE calendar type."""

from __future__ import annotations

from config import Settings
from providers import registry
from providers.oauth import OAuthFlow

CALENDAR_TYPE = "GOOGLE"


def v1_system(settings: Settings) -> str:
    return next(e.id for e in registry.entries(settings).values()
                if e.listing.calendar_type == CALENDAR_TYPE)  # fmt: skip


def v1_flow(settings: Settings) -> OAuthFlow | None:
    return registry.entry(v1_system(settings), settings).oauth
