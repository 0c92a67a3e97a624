"""The approval link is bound to the account it was sent to (`syncRequestEmail`).

Whoever opens the link signs in to some Google account. When it is another one than the request
names, the OAuth callback connects nothing: it holds the sign-in (encrypted, in Redis, for
`oauth_state_ttl` seconds) and sends the browser to `/approve/confirm`, which names both accounts
and asks to confirm the other one, or to sign in again. The confirmation is a form POST carrying
a ticket: the request's id and a random nonce naming the held sign-in, signed. The first
confirmation spends the sign-in, so a forged ticket or a replayed one connects nothing.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import redis
from fastapi import Request

from api.handover import redis_client
from config import Settings
from models import SyncRequest
from models.crypto import keyring
from models.db import session_scope
from models.signing import derived_keys, sign, verify
from providers.base import CalendarInfo
from providers.oauth import SignedIn

PURPOSE = "approval-confirm-v1"
MAX_TICKET_LENGTH = 300


@dataclass(frozen=True)
class Held:
    """A sign-in waiting for its owner's confirmation."""

    request_id: str
    signed_in: SignedIn


class OtherAccount(Exception):
    """Someone signed in to another account than the request's: ask them at `confirm_url`."""

    def __init__(self, confirm_url: str) -> None:
        super().__init__("another account signed in")
        self.confirm_url = confirm_url


class TicketRefused(Exception):
    """A confirmation calsync did not issue (400), or one used or expired (404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def same_account(asked: str, signed_in: str) -> bool:
    return asked.strip().casefold() == signed_in.strip().casefold()


def bind(request: Request, request_id: str, signed_in: SignedIn) -> None:
    """Go on when the account signed in is the one asked; else hold it and raise
    `OtherAccount`. A request gone meanwhile goes on, to be refused where it is approved."""
    with session_scope(request.app.state.engine) as db:
        asked = db.get(SyncRequest, request_id)
        email = asked.email if asked is not None else None
    if email is None or same_account(email, signed_in.email):
        return
    settings: Settings = request.app.state.settings
    ticket = hold(settings, redis_client(request.app.state), request_id, signed_in)
    base = str(settings.public_base_url).rstrip("/")
    raise OtherAccount(f"{base}/approve/confirm?{urlencode({'ticket': ticket})}")


def hold(settings: Settings, client: redis.Redis, request_id: str, signed_in: SignedIn) -> str:
    """Keep the sign-in for its confirmation; returns the ticket that confirms it."""
    nonce = secrets.token_urlsafe(16)
    sealed = keyring.encrypt(json.dumps(_dumped(request_id, signed_in)).encode())
    client.set(_key(settings, nonce), sealed, ex=settings.oauth_state_ttl)
    named = f"{request_id}.{nonce}"
    return f"{named}.{sign(derived_keys(settings, PURPOSE)[0], named.encode())}"


def peek(settings: Settings, client: redis.Redis, ticket: str) -> Held:
    """The held sign-in a ticket names, left in place (the confirmation page)."""
    request_id, nonce = _checked(settings, ticket)
    return _opened(client.get(_key(settings, nonce)), request_id)


def take(settings: Settings, client: redis.Redis, ticket: str) -> Held:
    """The held sign-in a ticket names, spent: a second confirmation finds nothing."""
    request_id, nonce = _checked(settings, ticket)
    return _opened(client.getdel(_key(settings, nonce)), request_id)


def _checked(settings: Settings, ticket: str) -> tuple[str, str]:
    parts = ticket.split(".")
    if len(ticket) > MAX_TICKET_LENGTH or len(parts) != 3 or not all(parts):
        raise TicketRefused(400, "this confirmation is not valid")
    request_id, nonce, signature = parts
    if not verify(derived_keys(settings, PURPOSE), f"{request_id}.{nonce}".encode(), signature):
        raise TicketRefused(400, "this confirmation was not issued by calsync")
    return request_id, nonce


def _opened(sealed: Any, request_id: str) -> Held:
    if sealed is None:
        raise TicketRefused(404, "this confirmation was used already or has expired; "
                                 "open the link in the email again")  # fmt: skip
    data = json.loads(keyring.decrypt(sealed.decode("ascii")))
    if data.get("request") != request_id:
        raise TicketRefused(400, "this confirmation belongs to another request")
    return Held(request_id, _loaded(data))


def _key(settings: Settings, nonce: str) -> str:
    return f"{settings.broker_key_prefix}calsync:approval-held:{nonce}"


def _dumped(request_id: str, signed_in: SignedIn) -> dict[str, Any]:
    expires = signed_in.expires_at
    return {
        "request": request_id, "email": signed_in.email,
        "credentials": dict(signed_in.credentials),
        "expires_at": expires.isoformat() if expires is not None else None,
        "primary": asdict(signed_in.primary) if signed_in.primary is not None else None,
    }  # fmt: skip


def _loaded(data: dict[str, Any]) -> SignedIn:
    expires, primary = data["expires_at"], data["primary"]
    return SignedIn(
        email=data["email"], credentials=data["credentials"],
        expires_at=datetime.fromisoformat(expires) if expires is not None else None,
        primary=CalendarInfo(**primary) if primary is not None else None,
    )  # fmt: skip
