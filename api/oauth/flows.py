"""Which calendar systems connect by OAuth, and where each sends the user back; the flows
themselves (consent page, code exchange) are the systems' own (`providers.registry`)."""

from __future__ import annotations

from config import Settings
from providers import registry
from providers.oauth import OAuthFlow


def callback_url(settings: Settings, system: str) -> str:
    """Where the system sends the user back; register it with the system's OAuth client."""
    return f"{str(settings.public_base_url).rstrip('/')}/oauth/{system}/callback"


def flow_for(settings: Settings, system: str) -> OAuthFlow | None:
    try:
        return registry.entry(system, settings).oauth
    except registry.UnknownProvider:
        return None
