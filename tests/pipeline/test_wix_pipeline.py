"""Wix end to end: the Wix sandbox signs webhooks to calsync's API, real workers read and write
Wix through the Wix provider; the external calendar is the local store's `alice`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from harness.clock import weekday_ahead
from harness.pipeline import Pair, event_body
from harness.processes import Launch, wait_until
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from config import Settings
from models import Connection, ExternalCalendar, InboxItem, Provider, Tenant, TenantStatus
from models.db import session_scope
from sandbox.server import ServedApp, serve_in_thread
from sandbox.store import StoreState
from sandbox.wix import WixState, create_app
from tasks.channels import open_channel
from tasks.context import WorkerContext, build_context


@dataclass
class Site:
    state: WixState
    instance_id: str
    schedule_id: str
    pair: Pair

    def session(self, day: date, hour: int, title: str, **event: Any) -> str:
        body = {"scheduleId": self.schedule_id, "title": title, "timeZone": "UTC",
                "start": local(day, hour), "end": local(day, hour + 1), **event}  # fmt: skip
        return str(self.state.create_event(self.instance_id, body)["id"])

    def edit(self, event_id: str, **fields: Any) -> None:
        self.state.update_event(self.instance_id, {"id": event_id, **fields},
                                require_revision=False)  # fmt: skip

    def wix_events(self) -> list[dict[str, Any]]:
        query = {"query": {"filter": {"scheduleId": self.schedule_id}}}
        found = self.state.query_events(self.instance_id, query)["events"]
        return [e for e in found if e.get("status") != "CANCELLED"]


def local(day: date, hour: int) -> dict[str, str]:
    return {"localDate": f"{day.isoformat()}T{hour:02d}:00:00"}


def upcoming(weekday: int = 0) -> date:
    return weekday_ahead(weekday, min_days=7).date()


@pytest.fixture
def wix() -> Iterator[tuple[WixState, ServedApp]]:
    state = WixState()
    with serve_in_thread(create_app(state)) as served:
        yield state, served
    state.close()


@pytest.fixture
def wix_settings(
    pipeline_settings: Settings, wix: tuple[WixState, ServedApp], api: ServedApp
) -> Settings:
    return pipeline_settings.model_copy(update={
        "wix_local_store_url": None, "wix_api_base_url": wix[1].base_url,
        "public_base_url": api.base_url,
    })  # fmt: skip


@pytest.fixture
def site(
    wix: tuple[WixState, ServedApp], wix_settings: Settings, api: ServedApp, engine: Engine,
    store: tuple[StoreState, ServedApp],
) -> Iterator[Site]:  # fmt: skip
    state, _ = wix
    app = state.add_app(webhook_url=f"{api.base_url}/webhooks/wix")
    settings = wix_settings.model_copy(update={
        "wix_app_id": app.app_id, "wix_app_secret": SecretStr(app.secret),
        "wix_public_key": app.public_key_pem,
    })  # fmt: skip
    context = build_context(settings)
    served_app = api.server.config.app
    served_app.state.settings, served_app.state.gate = settings, context.gate
    installed = state.install(app.app_id)
    assert state.webhooks.flush(5)
    staff = state.add_schedule(installed.instance_id, "Alice")
    yield Site(
        state,
        installed.instance_id,
        str(staff["id"]),
        connect(settings, context, engine, store, installed.instance_id, staff["id"]),
    )
    context.http.close()


def connect(
    settings: Settings, context: WorkerContext, engine: Engine,
    store: tuple[StoreState, ServedApp], instance_id: str, schedule_id: str,
) -> Pair:  # fmt: skip
    store_state, served = store
    store_state.add_calendar("alice")
    with session_scope(engine) as db:
        tenant = db.scalar(select(Tenant).where(Tenant.wix_instance_id == instance_id))
        assert tenant is not None, "AppInstalled created the tenant"
        connection = Connection(tenant_id=tenant.id, provider=Provider.LOCAL,
                                schedule_id=schedule_id, server_url=served.base_url,
                                sync_config={})  # fmt: skip
        db.add(connection)
        db.flush()
        calendar = ExternalCalendar(connection_id=connection.id, remote_id="alice",
                                    import_enabled=True, export_target=True)  # fmt: skip
        db.add(calendar)
        db.flush()
        db.add(open_channel(context, connection, calendar))
        pair = Pair(store_state, served.base_url, calendar.id, connection.id)
    return pair


@pytest.fixture
def running(site: Site, worker: Launch, api: ServedApp) -> Site:
    worker(api.server.config.app.state.settings)
    return site


def copies(site: Site) -> dict[str, dict[str, Any]]:
    return {str(e["event"]["title"]): e for e in site.pair.events("alice")}


def test_sessions_reach_the_external_calendar_with_overrides(running: Site) -> None:
    site, day = running, upcoming()
    site.state.set_schedule_overrides(site.instance_id, site.schedule_id,
                                      {"title": "Busy with a client"})  # fmt: skip
    session = site.session(day, 10, "Massage")
    wait_until(lambda: "Busy with a client" in copies(site), 20, "the session's copy")
    site.edit(session, start=local(day, 12), end=local(day, 13))
    wait_until(lambda: str(copies(site)["Busy with a client"]["event"]["start"]).startswith(
        f"{day.isoformat()}T12"), 20, "the copy to move")  # fmt: skip
    site.state.cancel_event(site.instance_id, session)
    wait_until(lambda: not copies(site), 20, "the copy to go")


def test_a_retitled_session_is_retitled_outside(running: Site) -> None:
    site, day = running, upcoming()
    session = site.session(day, 9, "Yoga")
    wait_until(lambda: "Yoga" in copies(site), 20, "the copy")
    site.edit(session, title="Power yoga")
    wait_until(lambda: list(copies(site)) == ["Power yoga"], 20, "the new title")


def test_a_weekly_session_is_one_series_with_two_exceptions(running: Site) -> None:
    site, first = running, upcoming(weekday=2)
    until = {"localDate": f"{(first + timedelta(weeks=5)).isoformat()}T23:59:59"}
    rule = {"frequency": "WEEKLY", "days": ["WEDNESDAY"], "until": until}
    master = site.session(first, 10, "Pilates", recurrenceRule=rule)
    second, third = first + timedelta(weeks=1), first + timedelta(weeks=2)
    site.edit(f"{master}_{second:%Y%m%d}T100000", start=local(second, 14), end=local(second, 15))
    site.state.cancel_event(site.instance_id, f"{master}_{third:%Y%m%d}T100000")

    def shape() -> tuple[int, int, int]:
        events = [e["event"] for e in site.pair.events("alice")]
        rec = [e.get("recurrence") or {} for e in events]
        series = sum(1 for r in rec if r.get("rule"))
        exceptions = [e for e, r in zip(events, rec, strict=True) if r.get("seriesId")]
        cancelled = sum(1 for e in exceptions if e["status"] == "cancelled")
        return series, len(exceptions), cancelled

    wait_until(lambda: shape() == (1, 2, 1), 30, "one series with two exceptions")
    assert len(site.pair.events("alice")) == 3


def test_external_events_become_tagged_blocks_that_follow(running: Site) -> None:
    site = running
    made = site.pair.person_adds("alice", "Dentist", hour=2)

    def blocks() -> list[dict[str, Any]]:
        return [e for e in site.wix_events() if e.get("title") == "Dentist"]

    wait_until(lambda: len(blocks()) == 1, 20, "a block on the Wix schedule")
    fields = blocks()[0]["extendedFields"]["namespaces"]["@calsync/sync"]
    assert fields["provider"] == "local" and str(fields["marker"]).startswith("calsync:")
    first_start = blocks()[0]["start"]["utcDate"]
    httpx.put(f"{site.pair.store_url}/_store/calendars/alice/events/{made}",
              json=event_body("Dentist", hour=6)).raise_for_status()  # fmt: skip
    wait_until(lambda: blocks() and blocks()[0]["start"]["utcDate"] != first_start, 20,
               "the block to move")  # fmt: skip
    httpx.delete(f"{site.pair.store_url}/_store/calendars/alice/events/{made}").raise_for_status()
    wait_until(lambda: not blocks(), 20, "the block to go")


def inbox_count(engine: Engine) -> int:
    """Wix webhooks recorded (the store's echo notifications of our writes come and go)."""
    with session_scope(engine) as db:
        query = select(func.count()).select_from(InboxItem).where(InboxItem.provider == "wix")
        return int(db.scalar(query) or 0)


def test_forged_expired_unsigned_and_replayed_webhooks_change_nothing(
    running: Site, engine: Engine
) -> None:
    site = running
    site.session(upcoming(), 11, "Reiki")
    wait_until(lambda: "Reiki" in copies(site), 20, "the copy")
    genuine = site.state.webhooks.latest()
    recorded = inbox_count(engine)
    for kind in ("other_key", "alg_none", "hs256", "expired", "tampered"):
        site.state.webhooks.forge(kind, genuine.id)
    assert site.state.webhooks.flush(5)
    assert inbox_count(engine) == recorded, "a forged webhook was recorded"
    site.state.webhooks.replay(genuine.id)
    assert site.state.webhooks.flush(5)
    assert inbox_count(engine) == recorded, "a replayed webhook was recorded again"
    assert site.pair.writes("alice") == 1


def test_removing_the_app_pauses_the_site(running: Site, engine: Engine) -> None:
    site = running
    site.state.remove(site.instance_id)
    assert site.state.webhooks.flush(5)
    with session_scope(engine) as db:
        tenant = db.scalar(select(Tenant).where(Tenant.wix_instance_id == site.instance_id))
        assert tenant is not None and tenant.status is TenantStatus.DISABLED
