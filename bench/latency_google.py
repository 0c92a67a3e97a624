"""The Google world of `bench.change_latency`: the Google sandbox on loopback, a person editing
alice's primary calendar through google-api-python-client, and calsync's connection to it.

Changes come in pairs: change 2k creates event k ("Latency k", half an hour, k hours after
tomorrow 08:00 UTC), change 2k+1 moves it half an hour later (an `events.patch` of its times).
The Wix side shows a change as applied once a block with that title starts at that time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from bench.change_latency import Connected, Expected, applied_blocks
from models import Connection, ExternalCalendar, Provider
from models.db import session_scope
from providers.google.account import GoogleAccount
from sandbox.google import PushSettings
from sync.snapshot import RemoteEvent
from tasks.channels import open_connection_channels
from tasks.context import WorkerContext
from tests.harness.google import CLIENT_ID, CLIENT_SECRET, USER, GoogleWorld, timed

LENGTH = 0.5  # hours


@dataclass
class GoogleLatencyWorld:
    """A served Google sandbox with Google's own push behaviour (the default `PushSettings`)."""

    name: str = "google"
    world: GoogleWorld = field(default_factory=lambda: GoogleWorld.start(PushSettings()))
    expected: dict[str, Expected] = field(default_factory=dict)
    event_ids: dict[int, str] = field(default_factory=dict)
    first: datetime = field(default_factory=lambda: _tomorrow_at(8))

    def __post_init__(self) -> None:
        self.world.reset()
        self.person: GoogleAccount = self.world.account()  # the person's own client and tokens

    def calsync_settings(self) -> dict[str, Any]:
        base = self.world.server.base_url
        return {
            "google_client_id": CLIENT_ID,
            "google_client_secret": SecretStr(CLIENT_SECRET),
            "google_auth_url": f"{base}/o/oauth2/v2/auth",
            "google_token_url": self.world.token_url,
            "google_api_base_url": f"{base}/calendar/v3/",
        }

    def connect(self, context: WorkerContext, tenant_id: str) -> Connected:
        """Alice's primary calendar connected to schedule s1 (as the OAuth callback leaves
        it), and its `events.watch` channel opened to calsync's webhook."""
        tokens = self.world.tokens()
        with session_scope(context.engine) as db:
            connection = Connection(tenant_id=tenant_id, provider=Provider.GOOGLE,
                                    schedule_id="s1", credentials=tokens.to_dict(),
                                    token_expires_at=tokens.expiry, external_account_email=USER,
                                    sync_config={})  # fmt: skip
            db.add(connection)
            db.flush()
            calendar = ExternalCalendar(connection_id=connection.id, remote_id=USER,
                                        import_enabled=True, export_target=True)  # fmt: skip
            db.add(calendar)
            db.flush()
            connected = Connected(connection.id, calendar.id)
        if open_connection_channels(context, connected.connection_id) != 1:
            raise RuntimeError("no Google channel was opened")
        return connected

    def change(self, n: int) -> str:
        slot, moving = divmod(n, 2)
        title, start = f"Latency {slot}", self.first + timedelta(hours=slot)
        events = self.person.api.service.events()
        if moving:
            title, start = self.expected[f"created:{n - 1}"].title, start + timedelta(hours=LENGTH)
            request = events.patch(calendarId=USER, eventId=self.event_ids[slot],
                                   body=timed(start, LENGTH))  # fmt: skip
            self.person.api.execute(request)
        else:
            request = events.insert(calendarId=USER, body={"summary": title,
                                                           **timed(start, LENGTH)})  # fmt: skip
            self.event_ids[slot] = str(self.person.api.execute(request)["id"])
        change_id = f"{'moved' if moving else 'created'}:{n}"
        self.expected[change_id] = Expected(title, start)
        return change_id

    def applied(self, blocks: Iterable[RemoteEvent]) -> dict[str, datetime]:
        return applied_blocks(self.expected, blocks)

    def close(self) -> None:
        self.world.stop()


def world() -> GoogleLatencyWorld:
    return GoogleLatencyWorld()


def _tomorrow_at(hour: int) -> datetime:
    today = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today + timedelta(days=1)
