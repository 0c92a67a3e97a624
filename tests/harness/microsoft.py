"""The Graph sandbox for the pipeline tests: calsync's settings aimed at it, the OAuth round trip
through calsync's own API as a browser makes it, and the mailbox owner editing in Outlook.

`sandbox.graph.harness.graph_harness` serves the sandbox (Graph over http, the login over https
for MSAL); MSAL in calsync's API and workers trusts its certificate authority through
`REQUESTS_CA_BUNDLE`, which the caller sets before starting them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import SecretStr

from api.oauth.flows import callback_url
from config import Settings
from models import Provider
from providers.base import BeforeRequest
from providers.microsoft.account import MicrosoftAccount
from providers.microsoft.auth import MicrosoftAuth, MicrosoftTokens
from sandbox.graph import GraphSettings
from sandbox.graph.harness import GraphHarness
from sandbox.graph.state import Instance, SubscriptionRecord

from .clock import days_ahead

MICROSOFT_ID = "ae0d26b4-7e04-4735-a15e-1b1acaba2f00"  # Wix's provider id for Microsoft
CONNECT = "/bookings/v2/external-calendars/connections:connectByOAuth"
BACK = "https://studio.example/connected"
BASE = days_ahead(7, 9)
# Deliveries retried soon (Graph: over hours), so a test sees the retries of a refused one.
GRAPH = GraphSettings(notification_retry_delays=(0.2, 0.5, 1.0), validation_timeout=5.0)


def signed_in(graph: GraphHarness, before_request: BeforeRequest | None = None
              ) -> MicrosoftAccount:  # fmt: skip
    """The harness user's mailbox as calsync opens it: fresh tokens, calsync's MSAL client."""
    issued = graph.issue_tokens()
    tokens = MicrosoftTokens(
        issued["access_token"],
        issued["refresh_token"],
        datetime.now(UTC) + timedelta(seconds=issued["expires_in"]),
        graph.user.upn,
    )
    auth = MicrosoftAuth(graph.client_id, graph.client_secret, graph.authority,
                         http_client=graph.login_session())  # fmt: skip
    return MicrosoftAccount(tokens, auth=auth, graph_base_url=graph.graph_base_url,
                            before_request=before_request)  # fmt: skip


def utc(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


@dataclass
class Outlook:
    """One mailbox in the sandbox, seen from the test: its owner's edits and what it holds."""

    graph: GraphHarness

    @property
    def user(self) -> str:
        return self.graph.user.id

    def settings_for(self, settings: Settings, api_base_url: str) -> Settings:
        """calsync's settings aimed at the sandbox, its app registered for calsync's callback."""
        aimed = settings.model_copy(update={
            "microsoft_client_id": self.graph.client_id,
            "microsoft_client_secret": SecretStr(self.graph.client_secret),
            "microsoft_authority_url": self.graph.authority,
            "microsoft_graph_base_url": self.graph.graph_base_url,
            "public_base_url": api_base_url,
        })  # fmt: skip
        redirect = callback_url(aimed, Provider.MICROSOFT)
        self.graph.state.identity.register_app(self.graph.client_id, self.graph.client_secret,
                                               [redirect])  # fmt: skip
        return aimed

    def connect(self, api_base_url: str, api_key: str, schedule_id: str) -> str:
        """Connect By OAuth through calsync's API: consent URL, Microsoft's consent screen,
        the callback; returns the new connection's id."""
        with httpx.Client(base_url=api_base_url, trust_env=False) as api:
            body = {"scheduleId": schedule_id, "providerId": MICROSOFT_ID, "redirectUrl": BACK}
            asked = api.post(CONNECT, headers={"Authorization": f"Bearer {api_key}"}, json=body)
            asked.raise_for_status()
            reply = self.graph.authorize(asked.json()["oauthUrl"])  # the browser at Microsoft
            back = api.get("/oauth/microsoft/callback", params=reply)
        if back.status_code != 302:
            raise AssertionError(f"the callback answered {back.status_code}: {back.text}")
        location = back.headers["location"]
        assert location.startswith(BACK), location
        return parse_qs(urlsplit(location).query)["connectionId"][0]

    # -- the owner in Outlook ------------------------------------------------------------------

    def add(self, subject: str, start: datetime, hours: float = 1, **extra: Any) -> str:
        body = {"subject": subject, "start": utc(start),
                "end": utc(start + timedelta(hours=hours)), **extra}  # fmt: skip
        instance, _ = self.graph.state.create_event(self.user, body, check_access=False)
        return instance.id

    def move(self, event_id: str, start: datetime, hours: float = 1) -> None:
        patch = {"start": utc(start), "end": utc(start + timedelta(hours=hours))}
        self.graph.state.update_event(self.user, event_id, patch, check_access=False)

    def remove(self, event_id: str) -> None:
        self.graph.state.delete_event(self.user, event_id, check_access=False)

    # -- what the mailbox holds ----------------------------------------------------------------

    def events(self) -> list[Instance]:
        """Single events and series masters of every calendar."""
        state = self.graph.state
        calendars = list(state.mailbox(self.user).calendars)
        return [e for calendar in calendars for e in state.list_events(self.user, calendar)]

    def subjects(self) -> list[str]:
        return sorted(str(e.content.get("subject")) for e in self.events())

    def subscriptions(self) -> list[SubscriptionRecord]:
        return self.graph.state.active_subscriptions(self.user)

    def change_deliveries(self) -> list[tuple[int | None, dict[str, Any]]]:
        """(status, item) of every change notification POSTed so far."""
        notifier = self.graph.state.notifier
        return [(d.status, item) for d in list(notifier.deliveries) if d.kind == "change"
                for item in d.items]  # fmt: skip
