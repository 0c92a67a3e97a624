"""A local stand-in for Wix: app OAuth, Calendar V3 events and schedules, signed webhooks.

See README.md here and docs/wix.md ("Sandbox choices") for what it emulates and how.
"""

from sandbox.wix.app import create_app
from sandbox.wix.model import Actor
from sandbox.wix.signing import FORGERIES
from sandbox.wix.state import ManualClock, WixState
from sandbox.wix.webhooks import DOCUMENTED_RETRY_DELAYS, Delivery, DeliveryOptions

__all__ = [
    "DOCUMENTED_RETRY_DELAYS",
    "FORGERIES",
    "Actor",
    "Delivery",
    "DeliveryOptions",
    "ManualClock",
    "WixState",
    "create_app",
]
