"""Google end to end: the Google sandbox (real google-api-python-client), calsync's API and real
worker processes; the Wix side is the local store's `wix-s1` calendar."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness.clock import BERLIN, weekly_across_offset_change
from harness.google import BASE, USER, GoogleWorld, timed
from harness.pipeline import Pair, serve_context
from harness.processes import Launch, wait_until
from sqlalchemy import Engine, select

from config import Settings
from models import (
    ChannelStatus,
    Connection,
    ConnectionStatus,
    ErrorReason,
    ExternalCalendar,
    Provider,
    PushChannel,
    Tenant,
)
from models.db import session_scope
from providers.google.events import instance_id
from sandbox.server import ServedApp
from sync.event import CanonicalEvent, EventStatus, Recurrence
from tasks.channels import open_channel, open_connection_channels, renew_expiring
from tasks.context import WorkerContext
from tasks.enqueue import request_sync
from tasks.tokens import refresh_expiring


@pytest.fixture(scope="module")
def google_world() -> Iterator[GoogleWorld]:
    world = GoogleWorld.start()
    yield world
    world.stop()


@pytest.fixture
def google(google_world: GoogleWorld) -> GoogleWorld:
    google_world.reset()
    return google_world


@pytest.fixture
def google_settings(pipeline_settings: Settings, google: GoogleWorld, api: ServedApp) -> Settings:
    return google.settings_for(pipeline_settings, api.base_url)


@pytest.fixture
def gcontext(google_settings: Settings, api: ServedApp) -> Iterator[WorkerContext]:
    yield from serve_context(google_settings, api)


@pytest.fixture
def connected(
    google: GoogleWorld, gcontext: WorkerContext, engine: Engine, store_pair: Pair
) -> Pair:
    """A Google connection of schedule s1, its primary calendar synced both ways, watched."""
    tokens = google.tokens()
    with session_scope(engine) as db:
        tenant = Tenant(wix_instance_id=f"instance-{uuid.uuid4().hex[:6]}")
        db.add(tenant)
        db.flush()
        connection = Connection(tenant_id=tenant.id, provider=Provider.GOOGLE, schedule_id="s1",
                                credentials=tokens.to_dict(), token_expires_at=tokens.expiry,
                                external_account_email=USER, sync_config={})  # fmt: skip
        db.add(connection)
        db.flush()
        calendar = ExternalCalendar(connection_id=connection.id, remote_id=USER,
                                    import_enabled=True, export_target=True)  # fmt: skip
        db.add(calendar)
        db.flush()
        pair = Pair(store_pair.store, store_pair.store_url, calendar.id, connection.id)
    assert open_connection_channels(gcontext, pair.connection_id) == 1
    # Sessions on the Wix side reach the worker through the store's channel.
    with session_scope(engine) as db:
        connection = db.get(Connection, pair.connection_id)
        calendar = db.get(ExternalCalendar, pair.calendar_id)
        assert connection is not None and calendar is not None
        db.add(open_channel(gcontext, connection, calendar, Provider.LOCAL, resource=pair.wix))
    return pair


@pytest.fixture
def store_pair(store: tuple[object, ServedApp]) -> Pair:
    state, served = store
    state.add_calendar("wix-s1")  # type: ignore[attr-defined]
    return Pair(state, served.base_url, "", "")  # type: ignore[arg-type]


def blocks(pair: Pair) -> dict[str, dict[str, object]]:
    return {str(e["event"]["title"]): e for e in pair.events(pair.wix)}  # type: ignore[index]


def block_start(pair: Pair, title: str) -> datetime:
    event = blocks(pair)[title]["event"]
    return datetime.fromisoformat(str(event["start"]))  # type: ignore[index]


def google_events(google: GoogleWorld) -> list[dict[str, object]]:
    return [e for e in google.state.stored_events(USER) if e.get("status") != "cancelled"]


def test_google_changes_reach_wix_within_one_push(
    google: GoogleWorld, connected: Pair, google_settings: Settings, worker: Launch
) -> None:
    worker(google_settings)
    made = google.state.insert_event(USER, {"summary": "Dentist", **timed(BASE)})
    wait_until(lambda: "Dentist" in blocks(connected), 20, "the block for a new Google event")
    block = blocks(connected)["Dentist"]
    assert block["tag"] == "google"

    moved = timed(BASE + timedelta(hours=2))
    google.state.patch_event(USER, str(made["id"]), moved)
    wait_until(lambda: block_start(connected, "Dentist") == BASE + timedelta(hours=2), 20,
               "the block to move")  # fmt: skip

    google.state.delete_event(USER, str(made["id"]))
    wait_until(lambda: "Dentist" not in blocks(connected), 20, "the block to go")


def test_a_session_becomes_a_google_event(
    google: GoogleWorld, connected: Pair, google_settings: Settings, worker: Launch
) -> None:
    worker(google_settings)
    connected.person_adds(connected.wix, "Massage", hour=3)
    wait_until(lambda: any(e.get("summary") == "Massage" for e in google_events(google)), 20,
               "the session in Google")  # fmt: skip
    (copy,) = [e for e in google_events(google) if e.get("summary") == "Massage"]
    private = copy["extendedProperties"]["private"]  # type: ignore[index]
    assert str(private["calsyncMarker"]).startswith("calsync:")


def weekly_pilates(first: datetime, weeks: int) -> CanonicalEvent:
    """Mondays 10:00 Berlin, `weeks` times (UNTIL the last one's end of day, as Wix words it)."""
    last = first + timedelta(weeks=weeks - 1)
    until = last.replace(hour=23, minute=59, second=59).astimezone(UTC)
    rule = f"FREQ=WEEKLY;BYDAY=MO;UNTIL={until:%Y%m%dT%H%M%SZ}"
    return CanonicalEvent("Pilates", first, first + timedelta(hours=1), time_zone=BERLIN.key,
                          recurrence=Recurrence(rule=rule))  # fmt: skip


def occurrence(series: CanonicalEvent, series_id: str, original: datetime, **fields: Any
               ) -> CanonicalEvent:  # fmt: skip
    start = fields.pop("start", original)
    return replace(series, start=start, end=start + timedelta(hours=1),
                   recurrence=Recurrence(series_id=series_id, original_start=original),
                   **fields)  # fmt: skip


def masters(google: GoogleWorld) -> list[dict[str, Any]]:
    return [e for e in google_events(google) if e.get("recurrence")]


def exceptions_of(google: GoogleWorld, master_id: str) -> dict[str, dict[str, Any]]:
    """The series' stored instance exceptions (cancelled ones included), by instance id."""
    stored = google.state.stored_events(USER)
    return {str(e["id"]): e for e in stored if e.get("recurringEventId") == master_id}


def expanded_starts(google: GoogleWorld, master_id: str) -> list[datetime]:
    """The occurrences Google shows for the series (events.instances)."""
    items = google.state.instances(USER, master_id, {})["items"]
    return [datetime.fromisoformat(str(i["start"]["dateTime"])) for i in items]


def test_a_recurring_session_with_exceptions_is_one_google_series(
    google: GoogleWorld, connected: Pair, google_settings: Settings, worker: Launch
) -> None:
    worker(google_settings)
    first = weekly_across_offset_change(5)  # Mondays 10:00 Berlin, across a DST switch
    weeks = [first + timedelta(weeks=n) for n in range(5)]
    series = weekly_pilates(first, len(weeks))
    series_id = connected.add_session(series)
    moved_to = weeks[1] + timedelta(hours=4)
    connected.add_session(occurrence(series, series_id, weeks[1], start=moved_to))
    connected.add_session(occurrence(series, series_id, weeks[2], status=EventStatus.CANCELLED))

    def shape() -> tuple[int, int]:
        found = masters(google)
        return len(found), len(exceptions_of(google, str(found[0]["id"]))) if found else 0

    wait_until(lambda: shape() == (1, 2), 30, "one Google series with two exceptions")
    (master,) = masters(google)
    master_id = str(master["id"])
    assert master["recurrence"] == [f"RRULE:{series.recurrence.rule}"]  # type: ignore[union-attr]
    found = exceptions_of(google, master_id)
    moved = found[instance_id(master_id, weeks[1])]
    assert moved.get("status") != "cancelled"
    assert datetime.fromisoformat(moved["start"]["dateTime"]) == moved_to
    assert found[instance_id(master_id, weeks[2])]["status"] == "cancelled"
    assert expanded_starts(google, master_id) == [weeks[0], moved_to, weeks[3], weeks[4]]
    assert len(google.state.stored_events(USER)) == 3  # the master and its two exceptions
    assert len(connected.events(connected.wix)) == 3  # nothing came back as a block

    # The series changes: a new title, and one week more.
    longer = replace(weekly_pilates(first, 6), title="Power Pilates")
    connected.edit_session(series_id, longer)
    wait_until(lambda: [m.get("summary") for m in masters(google)] == ["Power Pilates"], 20,
               "the series change in Google")  # fmt: skip
    (changed,) = masters(google)
    assert changed["id"] == master_id
    assert changed["recurrence"] == [f"RRULE:{longer.recurrence.rule}"]  # type: ignore[union-attr]
    assert set(exceptions_of(google, master_id)) == set(found)
    later = weeks[4] + timedelta(weeks=1)
    assert expanded_starts(google, master_id) == [weeks[0], moved_to, weeks[3], weeks[4], later]
    assert len(google.state.stored_events(USER)) == 3  # nothing doubled, nothing re-created
    assert len(connected.events(connected.wix)) == 3


def test_a_dropped_push_is_repaired_by_reconciliation(
    google: GoogleWorld, connected: Pair, google_settings: Settings, gcontext: WorkerContext,
    worker: Launch,
) -> None:  # fmt: skip
    worker(google_settings)
    google.state.faults.drop_notifications(1)
    google.state.insert_event(USER, {"summary": "Unheard", **timed(BASE)})
    assert google.state.wait_for_push_idle(5)
    assert "Unheard" not in blocks(connected)
    request_sync(gcontext.gate, connected.calendar_id, "reconcile", full=True)
    wait_until(lambda: "Unheard" in blocks(connected), 20, "reconciliation to find the event")


def test_an_expired_sync_token_means_a_full_listing_without_doubles(
    google: GoogleWorld, connected: Pair, google_settings: Settings, worker: Launch
) -> None:
    worker(google_settings)
    google.state.insert_event(USER, {"summary": "First", **timed(BASE)})
    wait_until(lambda: "First" in blocks(connected), 20, "the first block")
    google.state.expire_sync_tokens(USER)
    google.state.insert_event(USER, {"summary": "Second", **timed(BASE + timedelta(hours=1))})
    wait_until(lambda: "Second" in blocks(connected), 20, "the block after a 410")
    assert sorted(blocks(connected)) == ["First", "Second"]
    assert connected.writes(connected.wix) == 2


# Retry-After alone sets the pace: the backoff is capped at its 1 s.
@pytest.mark.timings(max_retry_delay=1)
def test_a_rate_limit_storm_delays_but_loses_nothing(
    google: GoogleWorld, connected: Pair, google_settings: Settings, worker: Launch
) -> None:
    worker(google_settings)
    google.state.faults.rate_limit(6, status=429, retry_after=1)
    for n in range(5):
        google.state.insert_event(
            USER, {"summary": f"Busy {n}", **timed(BASE + timedelta(hours=n))}
        )
    wait_until(lambda: len(blocks(connected)) == 5, 60, "every block despite 429s")
    assert connected.writes(connected.wix) == 5


def test_a_revoked_refresh_token_puts_the_connection_in_error(
    google: GoogleWorld, connected: Pair, gcontext: WorkerContext, engine: Engine
) -> None:
    google.state.revoke_access(USER)
    with session_scope(engine) as db:
        connection = db.get(Connection, connected.connection_id)
        assert connection is not None
        connection.token_expires_at = connection.token_expires_at - timedelta(days=1)  # type: ignore[operator]
    assert refresh_expiring(gcontext) == {"refreshed": 0, "revoked": 1, "failed": 0}
    with session_scope(engine) as db:
        connection = db.get(Connection, connected.connection_id)
        assert connection is not None
        assert connection.status is ConnectionStatus.ERROR
        assert connection.error_reason is ErrorReason.TOKEN_REVOKED


def test_tokens_are_refreshed_before_they_expire(
    google: GoogleWorld, connected: Pair, gcontext: WorkerContext, engine: Engine
) -> None:
    with session_scope(engine) as db:
        connection = db.get(Connection, connected.connection_id)
        assert connection is not None and connection.credentials is not None
        old_token = connection.credentials["accessToken"]
        connection.token_expires_at = connection.token_expires_at - timedelta(minutes=59)  # type: ignore[operator]
    assert refresh_expiring(gcontext)["refreshed"] == 1
    with session_scope(engine) as db:
        connection = db.get(Connection, connected.connection_id)
        assert connection is not None and connection.credentials is not None
        assert connection.credentials["accessToken"] != old_token
        assert connection.token_expires_at is not None


def test_channel_renewal_loses_and_doubles_nothing(
    google: GoogleWorld, connected: Pair, google_settings: Settings, gcontext: WorkerContext,
    engine: Engine, worker: Launch,
) -> None:  # fmt: skip
    worker(google_settings)
    google.state.insert_event(USER, {"summary": "Before", **timed(BASE)})
    wait_until(lambda: "Before" in blocks(connected), 20, "the block before renewal")
    far = google_settings.channel_renew_before + 8 * 24 * 3600
    from models.types import utcnow

    assert renew_expiring(gcontext, utcnow() + timedelta(seconds=far)) >= 1
    with session_scope(engine) as db:
        google_channels = db.scalars(select(PushChannel).where(
            PushChannel.provider == Provider.GOOGLE)).all()  # fmt: skip
        statuses = sorted(c.status.value for c in google_channels)
    assert statuses == [ChannelStatus.ACTIVE.value, ChannelStatus.STOPPED.value]  # new first
    assert len(google.state.live_channels(USER)) == 1
    google.state.insert_event(USER, {"summary": "After", **timed(BASE + timedelta(hours=1))})
    wait_until(lambda: "After" in blocks(connected), 20, "the block after renewal")
    assert connected.writes(connected.wix) == 2
