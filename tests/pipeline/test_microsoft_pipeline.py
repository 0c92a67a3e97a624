"""Microsoft 365 end to end: the Graph sandbox (real O365 and MSAL over HTTP), calsync's API
serving the webhooks and the OAuth callback, and real worker processes; the Wix side is the
local store's `wix-s1` calendar.

Every test starts from a connection made by the OAuth round trip through the API, whose
subscription the worker opened on connect (Graph ran the validation handshake against the API).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from harness.clock import weekly_across_offset_change
from harness.microsoft import BASE, GRAPH, Outlook
from harness.pipeline import Pair, serve_context
from harness.processes import Launch, wait_until
from sqlalchemy import Engine, select, text

from api.auth import create_tenant
from config import Settings
from models import (
    PRIMARY_PLACEHOLDER,
    ChannelStatus,
    Connection,
    ConnectionStatus,
    ExternalCalendar,
    InboxItem,
    Provider,
    PushChannel,
)
from models.db import session_scope
from models.types import utcnow
from providers.microsoft.account import SUBSCRIPTION_MINUTES
from sandbox.graph.harness import graph_harness
from sandbox.server import ServedApp
from sandbox.store import StoreState
from sync.event import CanonicalEvent, EventStatus, Recurrence
from tasks.channels import open_channel, renew_expiring
from tasks.context import WorkerContext
from tasks.reconfigure import apply_config_change, ensure_dedicated


@pytest.fixture
def outlook() -> Iterator[Outlook]:
    with graph_harness(GRAPH) as graph:
        yield Outlook(graph)


@pytest.fixture
def ms_settings(
    pipeline_settings: Settings, outlook: Outlook, api: ServedApp, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    # MSAL (in the API here, in the workers' environment) must trust the sandbox's login CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", outlook.graph.tls.ca_path)
    return outlook.settings_for(pipeline_settings, api.base_url)


@pytest.fixture
def mcontext(ms_settings: Settings, api: ServedApp) -> Iterator[WorkerContext]:
    yield from serve_context(ms_settings, api)


@pytest.fixture
def api_key(engine: Engine) -> str:
    with session_scope(engine) as db:
        _, key = create_tenant(db, f"instance-{uuid.uuid4().hex[:6]}", "Studio")
    return key


@pytest.fixture
def connected(
    outlook: Outlook, ms_settings: Settings, mcontext: WorkerContext, engine: Engine,
    store: tuple[StoreState, ServedApp], api: ServedApp, worker: Launch, api_key: str,
) -> Pair:  # fmt: skip
    """Schedule s1 connected by OAuth; the worker learnt the primary calendar, synced it and
    subscribed; the Wix side's store calendar is watched too."""
    state, served = store
    state.add_calendar("wix-s1")
    worker(ms_settings)
    connection_id = outlook.connect(api.base_url, api_key, "s1")
    wait_until(lambda: _ready(engine, connection_id), 30, "first sync and subscription")
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        calendar = db.scalars(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id)).one()  # fmt: skip
        assert connection is not None
        db.add(open_channel(mcontext, connection, calendar, Provider.LOCAL, resource="wix-s1"))
        return Pair(state, served.base_url, calendar.id, connection_id)


def _ready(engine: Engine, connection_id: str) -> bool:
    with session_scope(engine) as db:
        calendar = db.scalars(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id)).one()  # fmt: skip
        synced = calendar.remote_id != PRIMARY_PLACEHOLDER and calendar.cursor is not None
        return synced and len(live_subscriptions(engine, calendar.id)) == 1


def live_subscriptions(engine: Engine, calendar_id: str) -> list[PushChannel]:
    with session_scope(engine) as db:
        rows = list(db.scalars(select(PushChannel).where(
            PushChannel.calendar_id == calendar_id, PushChannel.provider == Provider.MICROSOFT,
            PushChannel.status == ChannelStatus.ACTIVE)))  # fmt: skip
        db.expunge_all()
        return rows


def subscription_of(engine: Engine, pair: Pair) -> PushChannel:
    (channel,) = live_subscriptions(engine, pair.calendar_id)
    return channel


def blocks(pair: Pair) -> dict[str, dict[str, Any]]:
    return {str(e["event"]["title"]): e for e in pair.events(pair.wix)}  # type: ignore[index]


def block_start(pair: Pair, title: str) -> datetime:
    return datetime.fromisoformat(str(blocks(pair)[title]["event"]["start"]))


def microsoft_inbox(engine: Engine) -> list[InboxItem]:
    with session_scope(engine) as db:
        rows = list(db.scalars(select(InboxItem).where(InboxItem.provider == "microsoft")))
        db.expunge_all()
        return rows


def massage(start: datetime = BASE, title: str = "Massage") -> CanonicalEvent:
    return CanonicalEvent(title, start, start + timedelta(hours=1), time_zone="Europe/Berlin")


# -- connecting -------------------------------------------------------------------------------


def test_connecting_by_oauth_subscribes_after_a_handshake(
    outlook: Outlook, connected: Pair, ms_settings: Settings, engine: Engine, api: ServedApp
) -> None:
    with session_scope(engine) as db:
        connection = db.get(Connection, connected.connection_id)
        assert connection is not None and connection.provider == Provider.MICROSOFT
        assert connection.external_account_email == outlook.graph.user.upn
        assert connection.status in (ConnectionStatus.SYNCED, ConnectionStatus.CONNECTED)
        refresh_token = str((connection.credentials or {}).get("refresh_token"))
    channel = subscription_of(engine, connected)
    (sub,) = outlook.subscriptions()  # Graph made it only after both URLs echoed the token
    assert sub.id == channel.channel_id and sub.client_state == channel.secret
    assert sub.change_types == {"created", "updated", "deleted"}
    assert sub.notification_url == f"{api.base_url}/webhooks/microsoft"
    assert sub.lifecycle_url == f"{api.base_url}/webhooks/microsoft/lifecycle"
    assert sub.resource == "/me/events"
    lifetime = (channel.expires_at - utcnow()).total_seconds() / 60
    assert SUBSCRIPTION_MINUTES - 5 < lifetime <= SUBSCRIPTION_MINUTES
    with engine.connect() as db:  # secrets are encrypted at rest
        stored = " ".join(str(v) for v in db.execute(text(
            "SELECT c.credentials, p.secret FROM connections c, push_channels p "
            "WHERE c.id = :connection AND p.id = :channel"),
            {"connection": connected.connection_id, "channel": channel.id}).one())  # fmt: skip
    assert refresh_token not in stored and str(sub.client_state) not in stored


# -- both ways --------------------------------------------------------------------------------


def test_outlook_changes_reach_wix_through_notifications(
    outlook: Outlook, connected: Pair, engine: Engine
) -> None:
    made = outlook.add("Dentist", BASE)
    wait_until(lambda: "Dentist" in blocks(connected), 20, "the block for a new Outlook event")
    assert blocks(connected)["Dentist"]["tag"] == "microsoft"
    assert any(row.payload.get("event") == made for row in microsoft_inbox(engine))

    outlook.move(made, BASE + timedelta(hours=2))
    wait_until(lambda: block_start(connected, "Dentist") == BASE + timedelta(hours=2), 20,
               "the block to move")  # fmt: skip

    outlook.remove(made)
    wait_until(lambda: "Dentist" not in blocks(connected), 20, "the block to go")
    assert connected.writes(connected.wix) == 1


def test_sessions_reach_outlook_and_follow_edits_and_cancellation(
    outlook: Outlook, connected: Pair
) -> None:
    session_id = connected.add_session(massage())
    wait_until(lambda: outlook.subjects() == ["Massage"], 20, "the session in Outlook")
    (copy,) = outlook.events()
    marker = next(v for k, v in copy.ext_props.items() if k.endswith("calsyncMarker"))
    assert marker.startswith("calsync:")

    connected.edit_session(session_id, massage(BASE + timedelta(hours=1), "Deep massage"))
    wait_until(lambda: outlook.subjects() == ["Deep massage"], 20, "the edit in Outlook")
    (edited,) = outlook.events()
    assert edited.id == copy.id and edited.start == BASE + timedelta(hours=1)

    connected.cancel_session(session_id)
    wait_until(lambda: outlook.events() == [], 20, "the cancellation in Outlook")
    assert blocks(connected) == {}  # nothing came back as a block


def test_a_recurring_session_with_exceptions_is_one_outlook_series(
    outlook: Outlook, connected: Pair
) -> None:
    first = weekly_across_offset_change(5)  # Mondays 10:00 Berlin, across a DST switch
    weeks = [first + timedelta(weeks=n) for n in range(5)]
    until = (weeks[-1].replace(hour=23, minute=59, second=59)).astimezone(ZoneInfo("UTC"))
    rule = f"FREQ=WEEKLY;BYDAY=MO;UNTIL={until:%Y%m%dT%H%M%SZ}"
    series = CanonicalEvent("Pilates", first, first + timedelta(hours=1), time_zone="Europe/Berlin",
                            recurrence=Recurrence(rule=rule))  # fmt: skip
    series_id = connected.add_session(series)
    moved_to = weeks[1] + timedelta(hours=4)

    def occurrence(original: datetime, **fields: Any) -> CanonicalEvent:
        start = fields.pop("start", original)
        return replace(series, start=start, end=start + timedelta(hours=1),
                       recurrence=Recurrence(series_id=series_id, original_start=original),
                       **fields)  # fmt: skip

    connected.add_session(occurrence(weeks[1], start=moved_to))
    connected.add_session(occurrence(weeks[2], status=EventStatus.CANCELLED))

    def starts() -> list[datetime]:
        masters = [e for e in outlook.events() if e.kind == "seriesMaster"]
        if len(masters) != 1:
            return []
        found = outlook.graph.state.instances(outlook.user, masters[0].id, weeks[0] - timedelta(
            days=1), weeks[-1] + timedelta(days=1))  # fmt: skip
        return [i.start for i in found]

    expected = [weeks[0], moved_to, weeks[3], weeks[4]]
    wait_until(lambda: starts() == expected, 30, "one Outlook series with two exceptions")
    (master,) = outlook.events()
    assert master.kind == "seriesMaster" and master.content["subject"] == "Pilates"
    assert len(connected.events(connected.wix)) == 3  # nothing came back as a block

    connected.edit_session(series_id, replace(series, title="Power Pilates"))
    wait_until(lambda: outlook.subjects() == ["Power Pilates"], 20, "the series change")
    assert starts() == expected and [e.id for e in outlook.events()] == [master.id]
    assert len(connected.events(connected.wix)) == 3


# -- refusals and recoveries --------------------------------------------------------------------


def test_a_wrong_client_state_is_refused_and_nothing_recorded(
    outlook: Outlook, connected: Pair, engine: Engine
) -> None:
    before = len(microsoft_inbox(engine))
    outlook.graph.state.faults.corrupt_client_state(1)
    forged_event = outlook.add("Forged", BASE)
    outlook.graph.state.notifier.wait_idle(10)
    refused = [s for s, item in outlook.change_deliveries()
               if item["resourceData"]["id"] == forged_event]  # fmt: skip
    assert refused and set(refused) == {401}  # every retry carries the same forged state
    assert len(microsoft_inbox(engine)) == before
    assert "Forged" not in blocks(connected)

    outlook.add("Genuine", BASE + timedelta(hours=3))
    wait_until(lambda: "Genuine" in blocks(connected), 20, "the next genuine notification")


def test_an_expired_delta_token_means_a_full_resync_without_doubles(
    outlook: Outlook, connected: Pair
) -> None:
    outlook.add("First", BASE)
    wait_until(lambda: "First" in blocks(connected), 20, "the first block")
    assert outlook.graph.state.expire_delta_tokens() > 0
    outlook.add("Second", BASE + timedelta(hours=1))
    wait_until(lambda: "Second" in blocks(connected), 20, "the block after the 410")
    assert sorted(blocks(connected)) == ["First", "Second"]
    assert connected.writes(connected.wix) == 2


def test_reauthorization_required_renews_and_resyncs_what_the_pause_lost(
    outlook: Outlook, connected: Pair, engine: Engine
) -> None:
    channel = subscription_of(engine, connected)
    sub = outlook.graph.state.subscription(channel.channel_id)
    sub.paused = True  # Graph has already stopped delivering
    outlook.add("Unnotified", BASE)
    outlook.graph.state.notifier.wait_idle(5)
    assert "Unnotified" not in blocks(connected)
    outlook.graph.state.send_lifecycle_event(sub.id, "reauthorizationRequired", pause=True)
    wait_until(lambda: "Unnotified" in blocks(connected), 20, "the resync after renewing")
    wait_until(lambda: not sub.paused and not sub.needs_reauthorization, 10, "the renewal")
    renewed = subscription_of(engine, connected)
    assert renewed.channel_id == channel.channel_id  # renewed in place
    assert renewed.expires_at > channel.expires_at
    outlook.add("Heard", BASE + timedelta(hours=2))
    wait_until(lambda: "Heard" in blocks(connected), 20, "notifications flowing again")


def test_subscription_removed_makes_a_new_one_and_resyncs(
    outlook: Outlook, connected: Pair, engine: Engine
) -> None:
    old = subscription_of(engine, connected)
    outlook.graph.state.send_lifecycle_event(old.channel_id, "subscriptionRemoved")
    outlook.add("Meanwhile", BASE)  # nobody is subscribed: only a resync finds it
    wait_until(lambda: "Meanwhile" in blocks(connected), 20, "the resync")

    def replaced() -> bool:
        live = live_subscriptions(engine, connected.calendar_id)
        return len(live) == 1 and live[0].channel_id != old.channel_id

    wait_until(replaced, 20, "a new subscription")
    fresh = subscription_of(engine, connected)
    (sub,) = outlook.subscriptions()
    assert sub.id == fresh.channel_id and sub.client_state == fresh.secret != old.secret
    with session_scope(engine) as db:
        stale = db.scalars(select(PushChannel).where(
            PushChannel.channel_id == old.channel_id)).one()  # fmt: skip
        assert stale.status is ChannelStatus.STOPPED
    outlook.add("After", BASE + timedelta(hours=2))
    wait_until(lambda: "After" in blocks(connected), 20, "notifications on the new subscription")


def test_missed_notifications_are_resynced(outlook: Outlook, connected: Pair,
                                           engine: Engine) -> None:  # fmt: skip
    outlook.graph.state.faults.drop_notifications(1)
    outlook.add("Dropped", BASE)
    outlook.graph.state.notifier.wait_idle(5)
    assert outlook.graph.state.faults.dropped_notifications == 1
    assert "Dropped" not in blocks(connected)
    channel = subscription_of(engine, connected)
    outlook.graph.state.send_lifecycle_event(channel.channel_id, "missed")
    wait_until(lambda: "Dropped" in blocks(connected), 20, "the resync after `missed`")
    assert subscription_of(engine, connected).channel_id == channel.channel_id


# Retry-After alone sets the pace: the backoff is capped at its 1 s.
@pytest.mark.timings(max_retry_delay=1)
def test_a_429_storm_delays_but_loses_nothing(outlook: Outlook, connected: Pair) -> None:
    outlook.graph.state.faults.throttle(6, retry_after=1)
    for n in range(3):
        outlook.add(f"Busy {n}", BASE + timedelta(hours=n))
    for n in range(2):
        connected.add_session(massage(BASE + timedelta(days=1, hours=n), f"Session {n}"))
    wanted = ["Busy 0", "Busy 1", "Busy 2", "Session 0", "Session 1"]
    wait_until(lambda: sorted(blocks(connected)) == wanted, 60, "every block despite 429s")
    wait_until(lambda: outlook.subjects() == wanted, 60, "every session despite 429s")
    assert outlook.graph.state.faults.injected[429] == 6
    assert connected.writes(connected.wix) == 3


def test_a_create_whose_answer_was_lost_is_not_doubled(outlook: Outlook, connected: Pair) -> None:
    outlook.graph.state.faults.lose_answers(1, methods=["POST"], path_prefix="/v1.0/me/calendars/")
    connected.add_session(massage())
    wait_until(lambda: outlook.graph.state.faults.injected.get(504) == 1, 20, "the lost answer")
    wait_until(lambda: outlook.subjects() == ["Massage"], 20, "the session in Outlook")
    outlook.add("Later", BASE + timedelta(hours=4))  # one more run after the retry settled
    wait_until(lambda: "Later" in blocks(connected), 20, "the next change")
    assert outlook.subjects() == ["Later", "Massage"]
    assert sorted(blocks(connected)) == ["Later", "Massage"]


def test_renewal_patches_the_subscription_in_place(
    outlook: Outlook, connected: Pair, mcontext: WorkerContext, engine: Engine
) -> None:
    channel = subscription_of(engine, connected)
    # A moment at which the subscription is within `channel_renew_before` of its expiry.
    later = channel.expires_at - timedelta(seconds=mcontext.settings.channel_renew_before - 60)
    assert renew_expiring(mcontext, later) == 1
    renewed = subscription_of(engine, connected)
    assert renewed.channel_id == channel.channel_id and renewed.expires_at > channel.expires_at
    (sub,) = outlook.subscriptions()
    assert abs((sub.expiration - renewed.expires_at).total_seconds()) < 1
    outlook.add("After renewal", BASE)
    wait_until(lambda: "After renewal" in blocks(connected), 20, "notifications after renewal")


def test_disconnecting_deletes_the_subscription(
    outlook: Outlook, connected: Pair, engine: Engine, api: ServedApp, api_key: str
) -> None:
    connected.add_session(massage())
    wait_until(lambda: outlook.subjects() == ["Massage"], 20, "the session in Outlook")
    channel = subscription_of(engine, connected)
    url = f"{api.base_url}/bookings/v2/external-calendars/connections/{connected.connection_id}"
    answer = httpx.post(f"{url}/disconnect", headers={"Authorization": f"Bearer {api_key}"})
    assert answer.status_code == 200, answer.text
    wait_until(lambda: outlook.subscriptions() == [], 20, "the subscription deleted in Graph")
    wait_until(lambda: outlook.events() == [], 20, "the session copy removed")
    with session_scope(engine) as db:
        row = db.scalars(select(PushChannel).where(
            PushChannel.channel_id == channel.channel_id)).one()  # fmt: skip
        assert row.status is ChannelStatus.STOPPED
    # Graph's late deliveries for the stopped subscription are acknowledged, not worked on.
    expires = (utcnow() + timedelta(days=3)).isoformat()
    late = {"value": [{"subscriptionId": channel.channel_id, "clientState": channel.secret,
                       "changeType": "updated", "resource": "Users/u/Events/e",
                       "subscriptionExpirationDateTime": expires}]}  # fmt: skip
    acknowledged = httpx.post(f"{api.base_url}/webhooks/microsoft", json=late)
    assert acknowledged.status_code == 202 and acknowledged.json()["recorded"] == 0


def test_a_dedicated_calendar_is_made_in_the_mailbox_and_receives_the_sessions(
    outlook: Outlook, connected: Pair, mcontext: WorkerContext, engine: Engine
) -> None:
    connected.add_session(massage())
    wait_until(lambda: outlook.subjects() == ["Massage"], 20, "the session in Outlook")
    with session_scope(engine) as db:  # what Update Sync Config saves for `dedicatedCalendar`
        connection = db.get(Connection, connected.connection_id)
        primary = db.get(ExternalCalendar, connected.calendar_id)
        assert connection is not None and primary is not None
        dedicated = {"enabled": True, "dedicatedCalendar": {}}
        connection.sync_config = {**(connection.sync_config or {}), "syncToCalendar": dedicated}
        primary.export_target = False
    done = apply_config_change(mcontext, connected.connection_id, [], [connected.calendar_id], [],
                               create_dedicated=True)  # fmt: skip
    # Its own subscription, so sessions edited there by the person are noticed at once.
    assert done == {"removed": 1, "resynced": 1, "channels": 1}
    mailbox = outlook.graph.state.mailbox(outlook.user)
    (made,) = [c for c in mailbox.calendars.values() if c.name == "Wix Bookings"]
    assert made.can_edit and not made.is_default

    def where() -> dict[str, list[str]]:
        names = {c.id: c.name for c in mailbox.calendars.values()}
        found: dict[str, list[str]] = {}
        for event in outlook.events():
            found.setdefault(names[event.record.calendar_id], []).append(
                str(event.content.get("subject")))  # fmt: skip
        return found

    wait_until(lambda: where() == {"Wix Bookings": ["Massage"]}, 20, "the session moved over")
    assert ensure_dedicated(mcontext, connected.connection_id) is not None  # made only once
    assert [c.name for c in mailbox.calendars.values()].count("Wix Bookings") == 1
