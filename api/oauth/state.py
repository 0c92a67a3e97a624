"""The OAuth `state` parameter: signed, short-lived, single-use, bound to what it was made for.

A state is `<payload>.<signature>`, both url-safe base64: the payload is compact JSON naming the
tenant, the schedule, the provider, the caller's redirect URL, an expiry and a random nonce (and,
in the v1 flow, the sync request being approved); the signature is HMAC-SHA256 under a key
derived from the encryption keys (`models.signing`). `verify` is pure: it checks signature,
shape, provider and expiry. `consume` then spends the nonce in Redis (SET NX), so a replayed
callback is refused even when its signature is good.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from config import Settings
from models.signing import b64decode, b64encode, derived_keys, sign, verify

PURPOSE = "oauth-state-v1"
MAX_STATE_LENGTH = 4096


class StateRefusal(StrEnum):
    MALFORMED = "MALFORMED"  # not a state calsync made
    TAMPERED = "TAMPERED"  # the signature does not match the content
    WRONG_PROVIDER = "WRONG_PROVIDER"  # made for another provider's callback
    EXPIRED = "EXPIRED"
    REPLAYED = "REPLAYED"  # already used once


MESSAGES = {
    StateRefusal.MALFORMED: "the sign-in link is not valid",
    StateRefusal.TAMPERED: "the sign-in link was altered",
    StateRefusal.WRONG_PROVIDER: "the sign-in link belongs to another provider",
    StateRefusal.EXPIRED: "the sign-in link has expired; start connecting again",
    StateRefusal.REPLAYED: "the sign-in link was used already; start connecting again",
}


class StateRefused(Exception):
    def __init__(self, reason: StateRefusal) -> None:
        super().__init__(MESSAGES[reason])
        self.reason = reason


@dataclass(frozen=True)
class OAuthState:
    tenant_id: str
    schedule_id: str
    provider: str
    redirect_url: str
    expires_at: int  # unix seconds
    nonce: str
    sync_request_id: str | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "t": self.tenant_id, "s": self.schedule_id, "p": self.provider,
            "r": self.redirect_url, "e": self.expires_at, "n": self.nonce,
        }  # fmt: skip
        if self.sync_request_id is not None:
            data["q"] = self.sync_request_id
        return data

    @classmethod
    def from_payload(cls, data: Any) -> OAuthState:
        if not isinstance(data, dict):
            raise StateRefused(StateRefusal.MALFORMED)
        texts = {key: data.get(key) for key in ("t", "s", "p", "r", "n")}
        if not all(isinstance(v, str) and v for v in texts.values()):
            raise StateRefused(StateRefusal.MALFORMED)
        expires, request_id = data.get("e"), data.get("q")
        if not isinstance(expires, int) or not isinstance(request_id, str | None):
            raise StateRefused(StateRefusal.MALFORMED)
        return cls(
            tenant_id=str(texts["t"]), schedule_id=str(texts["s"]), provider=str(texts["p"]),
            redirect_url=str(texts["r"]), expires_at=expires, nonce=str(texts["n"]),
            sync_request_id=request_id,
        )  # fmt: skip


def issue(
    settings: Settings,
    *,
    tenant_id: str,
    schedule_id: str,
    provider: str,
    redirect_url: str,
    sync_request_id: str | None = None,
    now: float | None = None,
) -> str:
    state = OAuthState(
        tenant_id=tenant_id, schedule_id=schedule_id, provider=provider,
        redirect_url=redirect_url, nonce=secrets.token_urlsafe(16),
        expires_at=int((now if now is not None else time.time()) + settings.oauth_state_ttl),
        sync_request_id=sync_request_id,
    )  # fmt: skip
    payload = b64encode(json.dumps(state.payload(), separators=(",", ":")).encode())
    signature = sign(derived_keys(settings, PURPOSE)[0], payload.encode("ascii"))
    return f"{payload}.{signature}"


def verify_state(
    settings: Settings, token: str, provider: str, now: float | None = None
) -> OAuthState:
    """The state's content, if calsync signed it for `provider` and it has not expired."""
    if not token or len(token) > MAX_STATE_LENGTH or token.count(".") != 1:
        raise StateRefused(StateRefusal.MALFORMED)
    payload, signature = token.split(".")
    if not verify(derived_keys(settings, PURPOSE), payload.encode("ascii"), signature):
        raise StateRefused(StateRefusal.TAMPERED)
    try:
        data = json.loads(b64decode(payload))
    except ValueError:
        raise StateRefused(StateRefusal.MALFORMED) from None
    state = OAuthState.from_payload(data)
    if state.provider != provider:
        raise StateRefused(StateRefusal.WRONG_PROVIDER)
    if state.expires_at <= (now if now is not None else time.time()):
        raise StateRefused(StateRefusal.EXPIRED)
    return state


def consume(client: redis.Redis, prefix: str, state: OAuthState, now: float | None = None) -> None:
    """Spend the state's nonce; a second call with the same state raises REPLAYED. The key
    lives a little longer than the state could, then Redis forgets it."""
    remaining = state.expires_at - int(now if now is not None else time.time())
    key = f"{prefix}calsync:oauth-state:{state.nonce}"
    if not client.set(key, "1", nx=True, ex=max(remaining, 0) + 60):
        raise StateRefused(StateRefusal.REPLAYED)
