"""A local stand-in for the Google Calendar API v3 and Google's OAuth endpoints (see README.md)."""

from .app import create_app
from .clock import Clock
from .faults import Faults
from .grants import CALENDAR_SCOPE, Caller
from .push import Delivery, PushSettings
from .state import GoogleOptions, GoogleState
from .store import Expansion

__all__ = [
    "CALENDAR_SCOPE",
    "Caller",
    "Clock",
    "Delivery",
    "Expansion",
    "Faults",
    "GoogleOptions",
    "GoogleState",
    "PushSettings",
    "create_app",
]
