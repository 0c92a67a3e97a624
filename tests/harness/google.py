"""The Google sandbox for tests: served on loopback, with accounts, tokens and a push receiver.

`GoogleWorld` serves the Google sandbox on a loopback port; accounts are `providers.google`
objects built on the real google-api-python-client and google-auth, pointed at it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config import Settings
from providers.base import CalendarInfo, SyncWindow
from providers.google.account import GoogleAccount
from providers.google.auth import CALENDAR_SCOPE, GoogleOAuthClient, GoogleTokens
from providers.google.calendar import GoogleCalendar
from sandbox.google import GoogleOptions, GoogleState, PushSettings, create_app
from sandbox.server import ServedApp, serve_in_thread

from .clock import steady_weekday_ahead

USER = "alice@example.com"
CLIENT_ID = "calsync-test.apps.googleusercontent.com"
CLIENT_SECRET = "sandbox-client-secret-0123456789abcdef"
REDIRECT = "http://127.0.0.1:9/oauth/google/callback"
SCOPE = f"{CALENDAR_SCOPE} openid email"
# A Monday 09:00 UTC at least a week ahead with no daylight-saving switch in Berlin for five
# weeks, and a window from three days before it to four weeks after its day began.
BASE = steady_weekday_ahead(0, weeks=5)
_DAY = BASE.replace(hour=0)
WINDOW = SyncWindow(_DAY - timedelta(days=3), _DAY + timedelta(days=28))


@dataclass
class Calls:
    """A `before_request` hook that counts."""

    count: int = 0

    def __call__(self) -> None:
        self.count += 1


@dataclass
class GoogleWorld:
    state: GoogleState
    server: ServedApp
    refreshed: list[GoogleTokens] = field(default_factory=list)

    @classmethod
    def start(cls, push: PushSettings | None = None) -> GoogleWorld:
        """Served and empty (`reset` seeds it); pushes retried briskly unless `push` says."""
        push = push or PushSettings(max_attempts=3, backoff_seconds=0.01, timeout_seconds=2)
        state = GoogleState(GoogleOptions(push=push, seed=7))
        return cls(state, serve_in_thread(create_app(state)))

    def stop(self) -> None:
        self.server.stop()
        self.state.close()

    def reset(self) -> None:
        state = self.state
        assert state.wait_for_push_idle(5)
        state.reset()
        state.options = GoogleOptions(push=state.options.push, seed=7)
        state.clock.reset()
        state.add_account(USER, time_zone="Europe/Berlin")
        state.add_client(CLIENT_ID, CLIENT_SECRET, (REDIRECT,))
        self.refreshed.clear()

    @property
    def token_url(self) -> str:
        return self.server.base_url + "/token"

    @property
    def auth_url(self) -> str:
        return self.server.base_url + "/o/oauth2/v2/auth"

    def settings_for(self, settings: Settings, public_base_url: str) -> Settings:
        """`settings` aimed at this sandbox, with calsync's API at `public_base_url`."""
        return settings.model_copy(update={
            "google_client_id": CLIENT_ID,
            "google_client_secret": SecretStr(CLIENT_SECRET),
            "google_token_url": self.token_url,
            "google_api_base_url": self.server.base_url + "/calendar/v3/",
            "public_base_url": public_base_url,
        })  # fmt: skip

    @property
    def oauth_client(self) -> GoogleOAuthClient:
        return GoogleOAuthClient(CLIENT_ID, CLIENT_SECRET, self.token_url)

    def tokens(self, email: str = USER, scope: str = SCOPE) -> GoogleTokens:
        """Tokens as after a consent (the sandbox skips the screen)."""
        body = self.state.issue_tokens(email, CLIENT_ID, scope)
        return GoogleTokens(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            expiry=datetime.now(UTC) + timedelta(seconds=int(body["expires_in"])),
            scopes=tuple(body["scope"].split()),
            email=email,
        )

    def account(
        self, tokens: GoogleTokens | None = None, calls: Calls | None = None
    ) -> GoogleAccount:
        return GoogleAccount(
            tokens or self.tokens(),
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            token_url=self.token_url,
            api_base_url=self.server.base_url + "/calendar/v3/",
            before_request=calls,
            on_tokens=self.refreshed.append,
        )

    def calendar(
        self,
        calendar_id: str = USER,
        *,
        calls: Calls | None = None,
        page_size: int = 2500,
        read_only: bool = False,
    ) -> GoogleCalendar:
        account = self.account(calls=calls)
        return account.calendar(CalendarInfo(calendar_id, read_only=read_only), WINDOW,
                                page_size=page_size)


def timed(start: datetime, hours: float = 1, tz: str = "Europe/Berlin") -> dict[str, Any]:
    end = start + timedelta(hours=hours)
    return {
        "start": {"dateTime": start.isoformat(), "timeZone": tz},
        "end": {"dateTime": end.isoformat(), "timeZone": tz},
    }


@dataclass
class Received:
    headers: dict[str, str]


class Receiver:
    """A webhook endpoint on loopback that records every POST it gets."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            await request.body()
            with self._cond:
                self.messages.append(Received(dict(request.headers)))
                self._cond.notify_all()
            return Response(status_code=200)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def wait_for(self, channel_id: str, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    m for m in self.messages if m.headers.get("x-goog-channel-id") == channel_id
                ]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found
                self._cond.wait(left)
