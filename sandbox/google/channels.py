"""Push channels opened by `events.watch` and closed by `channels.stop`."""

from __future__ import annotations

import ipaddress
import random
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import ApiError, bad_request, not_found

_CHANNEL_ID = re.compile(r"^[A-Za-z0-9\-_+/=]{1,64}$")
MAX_TOKEN = 256


@dataclass
class Channel:
    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str
    address: str
    token: str | None
    expiration_ms: int
    client_id: str
    last_message: int = 0
    stopped: bool = False

    def live(self, now_ms: int) -> bool:
        return not self.stopped and now_ms < self.expiration_ms

    def next_message_number(self, rng: random.Random, gaps: bool) -> int:
        """1 for the sync message; later ones increase, not necessarily one by one."""
        step = rng.randint(1, 3) if gaps and self.last_message else 1
        self.last_message += step
        return self.last_message

    def resource(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "api#channel",
            "id": self.id,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
            "expiration": str(self.expiration_ms),
        }
        if self.token is not None:
            body["token"] = self.token
        return body


@dataclass(frozen=True)
class ChannelRequest:
    """A checked watch body."""

    id: str
    address: str
    token: str | None
    ttl_seconds: float | None
    expiration_ms: int | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ChannelRequest:
        channel_id = str(body.get("id") or "")
        if not _CHANNEL_ID.match(channel_id):
            raise ApiError(
                400,
                "channelIdInvalid",
                "Channel id must match [A-Za-z0-9\\-_\\+/=]+ and be at most 64 characters.",
            )
        if body.get("type") not in ("web_hook", "webhook"):
            raise bad_request(f"Invalid channel type: {body.get('type')!r}")
        address = str(body.get("address") or "")
        if not is_loopback_url(address):
            # The sandbox only ever calls loopback addresses (and accepts plain http there).
            raise bad_request(
                f"Unauthorized WebHook callback channel: {address}",
                reason="push.webhookUrlUnauthorized",
            )
        token = body.get("token")
        if token is not None and len(str(token)) > MAX_TOKEN:
            raise bad_request("Channel token is longer than 256 characters.")
        return cls(
            id=channel_id,
            address=address,
            token=None if token is None else str(token),
            ttl_seconds=_ttl(body.get("params") or {}),
            expiration_ms=None if body.get("expiration") is None else int(body["expiration"]),
        )


class ChannelRegistry:
    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}

    def open(self, channel: Channel) -> Channel:
        # Ids must be unique within the project; a stopped channel's id stays taken.
        if channel.id in self.channels:
            raise bad_request("Channel id not unique", reason="channelIdNotUnique")
        self.channels[channel.id] = channel
        return channel

    def stop(self, channel_id: str, resource_id: str, client_id: str | None) -> Channel:
        channel = self.channels.get(channel_id)
        if (
            channel is None
            or channel.resource_id != resource_id
            or client_id not in (None, channel.client_id)
        ):
            raise not_found(f"Channel '{channel_id}' not found for project.")
        channel.stopped = True
        return channel

    def live_for(self, calendar_id: str, now_ms: int) -> list[Channel]:
        return [
            c for c in self.channels.values() if c.calendar_id == calendar_id and c.live(now_ms)
        ]


def expiration_ms(
    request: ChannelRequest, now_ms: int, default_ttl: float, max_ttl: float | None
) -> int:
    """The most restrictive of the ttl (default 604800 s), the sandbox's limit and an explicit
    expiration."""
    ttl = request.ttl_seconds if request.ttl_seconds is not None else default_ttl
    if max_ttl is not None:
        ttl = min(ttl, max_ttl)
    expires = now_ms + int(ttl * 1000)
    if request.expiration_ms is not None:
        if request.expiration_ms <= now_ms:
            raise bad_request("Channel expiration is in the past.")
        expires = min(expires, request.expiration_ms)
    return expires


def is_loopback_url(address: str) -> bool:
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _ttl(params: dict[str, Any]) -> float | None:
    raw = params.get("ttl")
    if raw is None:
        return None
    try:
        ttl = float(raw)
    except (TypeError, ValueError):
        raise bad_request("Invalid value for: params.ttl") from None
    if ttl <= 0:
        raise bad_request("Invalid value for: params.ttl")
    return ttl
