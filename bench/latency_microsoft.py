"""The Microsoft world of `bench.change_latency`: the Graph sandbox on loopback, a person editing
alice's Outlook calendar through the O365 package with her own sign-in, and calsync's connection
to that mailbox with its Graph subscription.

Path measured: the person's O365 POSTs or PATCHes the event in the sandbox's Graph API -> the
sandbox's notifier thread POSTs a basic change notification (ids only) to calsync's
`/webhooks/microsoft` -> the API checks the clientState, records it in the inbox and enqueues ->
the worker waits out the debounce, runs a `calendarView/delta` round with its delta token and
writes the block to the Wix side.

Graph's notification behaviour is the sandbox's default (`GraphSettings()`): a change is POSTed
as soon as it is made, failed deliveries retried after 0.2 s, 0.5 s, 1 s, ... for up to 4 hours,
3 s answer timeout. Graph documents no delivery latency for Outlook events ("Unknown"; calendars:
under a minute on average, 3 minutes at most) and the sandbox has no delay setting, so these
figures are calsync's share of the path, without Graph's own delivery time.

Connecting follows the OAuth callback and the worker's first sync: calsync's MSAL app redeems a
code from the sandbox's consent step, the connection starts with the primary calendar's
placeholder id, `start_syncing` learns the real id and asks the worker for the full sync, and
`open_connection_channels` subscribes to `/me/events` (Graph runs the validation handshake
against calsync's API process before it answers). MSAL in calsync's API and worker processes
trusts the sandbox's login certificate through `REQUESTS_CA_BUNDLE`, set here for them to inherit.

Changes come in pairs: change 2k creates event k ("Latency k", half an hour, k hours after
tomorrow 08:00 UTC), change 2k+1 moves it half an hour later (a PATCH of its start and end).
The Wix side shows a change as applied once a block with that title starts at that time.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msal
from O365 import Account
from O365.calendar import Calendar, Event
from O365.connection import MSGraphProtocol
from O365.utils.token import MemoryTokenBackend
from pydantic import SecretStr

from bench.change_latency import Connected, Expected, applied_blocks
from models import PRIMARY_PLACEHOLDER, Connection, ExternalCalendar, Provider
from models.db import session_scope
from providers.microsoft.auth import MicrosoftAuth, MicrosoftTokens
from sandbox.graph import GraphSettings
from sandbox.graph.harness import GraphHarness, graph_harness
from sync.snapshot import RemoteEvent
from tasks.channels import open_connection_channels
from tasks.context import WorkerContext
from tasks.first_sync import start_syncing

LENGTH = timedelta(minutes=30)
BERLIN = ZoneInfo("Europe/Berlin")  # the mailbox's zone (W. Europe Standard Time)
# The person's own mail app: another app registration than calsync's, its own tokens.
OUTLOOK_APP, OUTLOOK_SECRET = "outlook-desktop", "outlook-secret"
OUTLOOK_REDIRECT = "http://127.0.0.1:9/outlook"
OUTLOOK_SCOPES = ["https://graph.microsoft.com/Calendars.ReadWrite"]
FIRST_SYNC_SECONDS = 60.0


@dataclass
class MicrosoftLatencyWorld:
    """A served Graph sandbox with its default notification behaviour (see the module doc)."""

    name: str = "microsoft"
    expected: dict[str, Expected] = field(default_factory=dict)
    events: dict[int, Event] = field(default_factory=dict)
    first: datetime = field(default_factory=lambda: _tomorrow_at(8))

    def __post_init__(self) -> None:
        self._stack = ExitStack()
        try:
            self.graph: GraphHarness = self._stack.enter_context(graph_harness(GraphSettings()))
            self._trust_login_for_subprocesses()
            self.outlook = outlook_account(self.graph)
            self._stack.callback(_close_sessions, self.outlook)
            self.calendar: Calendar = self.outlook.schedule().get_default_calendar()
        except BaseException:
            self._stack.close()  # the driver only closes a world it got
            raise

    def calsync_settings(self) -> dict[str, Any]:
        return {
            "microsoft_client_id": self.graph.client_id,
            "microsoft_client_secret": SecretStr(self.graph.client_secret),
            "microsoft_authority_url": self.graph.authority,
            "microsoft_graph_base_url": self.graph.graph_base_url,
        }

    def connect(self, context: WorkerContext, tenant_id: str) -> Connected:
        """Schedule s1 connected to alice's mailbox as the OAuth callback leaves it, its first
        sync done and its Graph subscription open."""
        tokens = self._sign_in_calsync()
        with session_scope(context.engine) as db:
            connection = Connection(
                tenant_id=tenant_id, provider=Provider.MICROSOFT, schedule_id="s1",
                credentials=tokens.to_dict(), token_expires_at=tokens.expires_at,
                external_account_email=tokens.username, sync_config={},
            )  # fmt: skip
            db.add(connection)
            db.flush()
            calendar = ExternalCalendar(connection_id=connection.id, remote_id=PRIMARY_PLACEHOLDER,
                                        name="Calendar", is_primary=True, import_enabled=True,
                                        export_target=True)  # fmt: skip
            db.add(calendar)
            db.flush()
            connected = Connected(connection.id, calendar.id)
        if start_syncing(context, connected.connection_id) != {"synced": 1}:
            raise RuntimeError("calsync did not learn the primary calendar")
        if open_connection_channels(context, connected.connection_id) != 1:
            raise RuntimeError("no Graph subscription was opened")
        _wait_for_first_sync(context, connected.calendar_id)
        return connected

    def change(self, n: int) -> str:
        slot, moving = divmod(n, 2)
        start = self.first + timedelta(hours=slot)
        if moving:
            event, start = self.events[slot], start + LENGTH
        else:
            event = self.events[slot] = self.calendar.new_event(f"Latency {slot}")
        event.start, event.end = start.astimezone(BERLIN), (start + LENGTH).astimezone(BERLIN)
        if not event.save():
            raise RuntimeError(f"O365 could not save change {n}")
        change_id = f"{'moved' if moving else 'created'}:{n}"
        self.expected[change_id] = Expected(str(event.subject), start)
        return change_id

    def applied(self, blocks: Iterable[RemoteEvent]) -> dict[str, datetime]:
        return applied_blocks(self.expected, blocks)

    def close(self) -> None:
        self._stack.close()

    def _sign_in_calsync(self) -> MicrosoftTokens:
        """calsync's own MSAL code redeems a code from the consent step, as its callback does."""
        auth = MicrosoftAuth(self.graph.client_id, self.graph.client_secret, self.graph.authority,
                             http_client=self.graph.login_session())  # fmt: skip
        reply = self.graph.authorize(auth.consent_url(self.graph.redirect_uri, "bench"))
        return auth.exchange_code(reply["code"], self.graph.redirect_uri)

    def _trust_login_for_subprocesses(self) -> None:
        """calsync's processes inherit this environment; MSAL there refreshes over https."""
        before = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = self.graph.tls.ca_path
        self._stack.callback(_restore_env, "REQUESTS_CA_BUNDLE", before)


def outlook_account(graph: GraphHarness) -> Account:
    """O365 as the person's mail app: signed in through MSAL against the sandbox, and left with
    that MSAL app so a token refresh stays on loopback too."""
    graph.state.identity.register_app(OUTLOOK_APP, OUTLOOK_SECRET, [OUTLOOK_REDIRECT])
    backend = MemoryTokenBackend()
    app = msal.ConfidentialClientApplication(
        OUTLOOK_APP, client_credential=OUTLOOK_SECRET, authority=graph.authority,
        instance_discovery=False, http_client=graph.login_session(), token_cache=backend,
    )  # fmt: skip
    with warnings.catch_warnings():  # MSAL prefers the PKCE flow; a code is a code here
        warnings.simplefilter("ignore", DeprecationWarning)
        url = app.get_authorization_request_url(OUTLOOK_SCOPES, redirect_uri=OUTLOOK_REDIRECT)
        answer = app.acquire_token_by_authorization_code(
            graph.authorize(url)["code"], OUTLOOK_SCOPES, redirect_uri=OUTLOOK_REDIRECT
        )
    if "access_token" not in answer:
        raise RuntimeError(f"the person could not sign in: {answer.get('error')}")
    protocol = type("SandboxGraph", (MSGraphProtocol,), {"_protocol_url": graph.graph_base_url})
    account = Account((OUTLOOK_APP, OUTLOOK_SECRET), protocol=protocol(timezone=BERLIN),
                      token_backend=backend, requests_delay=0)  # fmt: skip
    account.con._msal_client = app  # O365's own would refresh at login.microsoftonline.com
    return account


def _wait_for_first_sync(context: WorkerContext, calendar_id: str) -> None:
    deadline = time.monotonic() + FIRST_SYNC_SECONDS
    while True:
        with session_scope(context.engine) as db:
            calendar = db.get(ExternalCalendar, calendar_id)
            if calendar is not None and calendar.cursor is not None:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("the first sync did not finish; see the worker's log")
        time.sleep(0.1)


def _close_sessions(account: Account) -> None:
    """O365 closes its HTTP sessions only at garbage collection, noisily at exit."""
    for name in ("session", "naive_session"):
        session = getattr(account.con, name, None)
        if session is not None:
            session.close()
            setattr(account.con, name, None)


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def world() -> MicrosoftLatencyWorld:
    return MicrosoftLatencyWorld()


def _tomorrow_at(hour: int) -> datetime:
    today = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today + timedelta(days=1)
