"""What a calendar system's push notifications look like to calsync's one webhook receiver.

The receiver (`api/webhooks`) owns what every system shares: finding the channel a notice
names, recording it in the inbox under its idempotency key, asking for a sync. A system's
`PushReceiver` owns what differs: reading its deliveries into `Notice`s, telling a genuine
notice from a forged one with the channel's secret, and answering in the way the system
expects (Google wants 200 for a channel it should forget, Graph 202 and its handshake).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class MalformedDelivery(ValueError):
    """The request is not a delivery of this system at all (answer 400)."""


class ChannelEvent(StrEnum):
    CHANGED = "changed"  # the calendar changed: sync it
    RESYNC = "resync"  # notifications were lost: sync it
    RENEW = "renew"  # the channel must be renewed now (it also stays paused until then)
    REOPEN = "reopen"  # the provider removed the channel: open a new one


@dataclass(frozen=True)
class Delivery:
    """One HTTP request a calendar system sent to `/webhooks/<system>[/<path>]`."""

    headers: Mapping[str, str]  # names in lower case
    query: Mapping[str, str]
    body: bytes
    path: str = ""


@dataclass(frozen=True)
class Notice:
    """One notification of a delivery. It is a hint, never data: the worker pulls the change.

    - `key`: the same notification sent again has the same key (one inbox row).
    - `proof`: what the notice claims as its channel's secret, when it carries it itself.
    - `event_id`, `version`: the event and its version after the change, when the system says,
      so the echo of calsync's own write costs no sync.
    - `opening`: the first message of a new channel (Google's `sync`): nothing changed.
    - `readable`: False when a notice names its channel but not what happened; it is still
      checked first, so a forger learns nothing from the answer.
    """

    channel_id: str
    key: str
    event: ChannelEvent = ChannelEvent.CHANGED
    payload: Mapping[str, Any] = field(default_factory=dict)
    proof: str | None = None
    event_id: str | None = None
    version: str | None = None
    opening: bool = False
    readable: bool = True


@dataclass
class Tally:
    """What became of a delivery's notices."""

    recorded: int = 0  # new, and work was asked for
    echoes: int = 0  # new, but the echo of calsync's own write: recorded as done
    duplicates: int = 0  # seen before under the same key
    openings: int = 0
    stale: int = 0  # genuine, of a channel that no longer asks for work
    unknown: int = 0  # no such channel
    forged: int = 0  # a known channel, the wrong proof
    unreadable: int = 0  # genuine, but not saying what happened

    @property
    def genuine(self) -> int:
        return self.recorded + self.echoes + self.duplicates + self.openings + self.stale


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # JSON, or text when `media_type` says so
    media_type: str = "application/json"


class PushReceiver(Protocol):
    def handshake(self, delivery: Delivery) -> Reply | None:
        """An answer due before anything is read (Graph's validation), or None."""
        ...

    def notices(self, delivery: Delivery) -> list[Notice]:
        """The delivery's notices; `MalformedDelivery` when it is not one of this system's."""
        ...

    def genuine(self, notice: Notice, delivery: Delivery, secret: str) -> bool:
        """Whether the notice comes from the channel whose secret is `secret`."""
        ...

    def answer(self, tally: Tally) -> Reply: ...


def same_secret(given: str | None, secret: str) -> bool:
    """Compared in constant time, so the answer's timing tells a forger nothing."""
    if given is None:
        return False
    # A header can carry any code point, a lone surrogate included: as bytes it still compares.
    return hmac.compare_digest(given.encode(errors="surrogatepass"), secret.encode())
