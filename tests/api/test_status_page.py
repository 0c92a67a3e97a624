"""The status page through HTTP: basic auth like Flower (its own credential, else Flower's, else
no page at all), a business's connections, calendars, runs with their reason codes, progress,
conflicts and dead letters, forms that retry and resolve (with their CSRF defence), names
shown as text, and the panel hook other modules draw into."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import Queued, TenantKey, derive, make_tenant, seed_connection
from fastapi import APIRouter
from fastapi.testclient import TestClient
from markupsafe import Markup
from records import add_conflict, add_letter, add_run, calendar_of, status_of
from sqlalchemy import Engine, update

from api.app import create_app
from api.status_page.panels import Panel, PanelView, add_panel, html, remove_panel
from config import Settings
from models import (
    Conflict,
    ConflictStatus,
    Connection,
    ConnectionStatus,
    DeadLetter,
    DeadLetterStatus,
    ErrorReason,
    ExternalCalendar,
    Link,
    RunStatus,
    Side,
)
from models.db import session_scope
from models.types import utcnow
from tasks.context import WorkerContext

OPERATOR = ("ops", "s3cret-pass")
SYNC = "tasks.calendar_sync.sync_calendar"


@pytest.fixture
def page(api_settings: Settings, context: WorkerContext) -> Iterator[TestClient]:
    """The API with the status page's own credential; requests send it unless told not to."""
    app = create_app(derive(api_settings, status_basic_auth=":".join(OPERATOR)))
    app.state.gate = context.gate
    with TestClient(app, base_url=str(api_settings.public_base_url).rstrip("/"),
                    follow_redirects=False) as client:  # fmt: skip
        client.auth = OPERATOR
        yield client


def csrf_of(body: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', body)
    assert found is not None, "the page has no form"
    return found.group(1)


def test_only_the_operator_sees_the_page(
    page: TestClient, client: TestClient, api_settings: Settings, context: WorkerContext
) -> None:
    for auth in (None, ("ops", "wrong"), ("admin", "test-password")):
        refused = page.get("/status", auth=auth)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic realm=")
    assert page.get("/status").status_code == 200
    # Without a credential of its own the page takes Flower's ...
    assert client.get("/status", auth=("admin", "test-password")).status_code == 200
    assert client.get("/status", auth=OPERATOR).status_code == 401
    # ... and with neither there is no page.
    bare = create_app(derive(api_settings, flower_basic_auth=None))
    bare.state.gate = context.gate
    with TestClient(bare) as nobody:
        assert nobody.get("/status", auth=OPERATOR).status_code == 404
        assert nobody.get("/status/static/style.css").status_code == 404


def test_a_business_shows_its_connections_runs_conflicts_and_dead_letters(
    page: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    home = calendar_of(engine, connection_id, "/alice/home/")
    with session_scope(engine) as db:
        db.execute(update(Connection).where(Connection.id == connection_id).values(
            status=ConnectionStatus.ERROR, error_reason=ErrorReason.TOKEN_REVOKED,
            error_message="the server refused the password"))  # fmt: skip
        for n, origin in enumerate((Side.WIX, Side.WIX, Side.EXTERNAL)):
            db.add(Link(connection_id=connection_id, calendar_id=home, origin=origin, base={},
                        wix_event_id=f"w{n}", external_event_id=f"e{n}"))  # fmt: skip
    add_run(engine, connection_id, home, 5, kind="full", trigger="connect", created=2,
            lag_ms=1500, actions=[{"action": "Create", "side": "wix",
                                   "reason": "CREATED_EXTERNALLY", "outcome": "done",
                                   "count": 2}])  # fmt: skip
    add_run(engine, connection_id, home, 0, kind="full", status=RunStatus.RUNNING,
            finished_at=None, planned=120, progress=45)  # fmt: skip
    add_conflict(engine, connection_id)
    add_letter(engine, connection_id, home, "link-9")

    overview = page.get("/status").text
    assert "Studio A" in overview
    assert "1 connection(s) in error, 1 open conflict(s), 1 parked change(s)" in overview

    shown = page.get(f"/status/tenants/{tenant.tenant_id}").text
    for fact in ("alice@example.com", "TOKEN_REVOKED: the server refused the password", "Home",
                 "<strong>2</strong> session(s) copied", "<strong>1</strong> event(s) blocking",
                 "CREATED_EXTERNALLY", "45 of 120", "1.5 s", "Yoga (Wix)", "Yoga (Alice)",
                 "ORIGIN_WINS", "PermanentError: the event was refused", "PARKED"):  # fmt: skip
        assert fact in shown, fact
    assert '<meta http-equiv="refresh"' in shown  # while the large run goes on
    assert page.get("/status/tenants/no-such-business").status_code == 404


def test_the_forms_retry_a_dead_letter_and_resolve_a_conflict(
    page: TestClient, tenant: TenantKey, other: TenantKey, engine: Engine,
    api_settings: Settings, queued: Queued,
) -> None:  # fmt: skip
    connection_id = seed_connection(engine, api_settings, tenant)
    home = calendar_of(engine, connection_id, "/alice/home/")
    letter_id = add_letter(engine, connection_id, home, "link-1")
    conflict_id = add_conflict(engine, connection_id)
    theirs = seed_connection(engine, api_settings, other, "sched-9")
    their_letter = add_letter(engine, theirs, calendar_of(engine, theirs, "/alice/home/"), "x")
    base = f"/status/tenants/{tenant.tenant_id}"
    token = csrf_of(page.get(base).text)

    for refused in ({}, {"csrf": "0" * 64}):  # no token, a wrong one
        assert page.post(f"{base}/dead-letters/{letter_id}/retry", data=refused).status_code == 403
    foreign = page.post(f"{base}/dead-letters/{letter_id}/retry", data={"csrf": token},
                        headers={"Origin": "https://evil.example"})  # fmt: skip
    assert foreign.status_code == 403
    mixed_up = page.post(f"{base}/dead-letters/{their_letter}/retry", data={"csrf": token})
    assert mixed_up.status_code == 404
    assert status_of(engine, DeadLetter, letter_id) is DeadLetterStatus.PARKED
    assert queued("sync") == []

    retried = page.post(f"{base}/dead-letters/{letter_id}/retry", data={"csrf": token},
                        headers={"Origin": "http://127.0.0.1:8000"})  # fmt: skip
    assert retried.status_code == 303
    assert retried.headers["location"] == f"{base}?notice=retried#dead-letters"
    assert status_of(engine, DeadLetter, letter_id) is DeadLetterStatus.RETRYING
    assert (SYNC, [home, "retry", True]) in queued("sync")
    assert "will try it again now" in page.get(retried.headers["location"]).text

    bad = page.post(f"{base}/conflicts/{conflict_id}/resolve", data={"csrf": token, "keep": "?"})
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "keep"
    kept = page.post(f"{base}/conflicts/{conflict_id}/resolve",
                     data={"csrf": token, "keep": "WINNER"})  # fmt: skip
    assert kept.status_code == 303 and "notice=acknowledged" in kept.headers["location"]
    assert status_of(engine, Conflict, conflict_id) is ConflictStatus.ACKNOWLEDGED
    assert "Yoga (Alice)" not in page.get(base).text  # no longer open
    late = page.post(f"{base}/conflicts/{conflict_id}/resolve",
                     data={"csrf": token, "keep": "EXTERNAL"})  # fmt: skip
    assert "notice=CONFLICT_CLOSED" in late.headers["location"]


def test_names_from_outside_are_shown_as_text(
    page: TestClient, engine: Engine, api_settings: Settings
) -> None:
    script = "<script>alert(1)</script>"
    owner = make_tenant(engine, f"Studio {script}")
    connection_id = seed_connection(engine, api_settings, owner)
    with session_scope(engine) as db:
        db.execute(update(ExternalCalendar).where(ExternalCalendar.connection_id == connection_id)
                   .values(name=f"Home {script}"))  # fmt: skip
    add_conflict(engine, connection_id, wix_value=f"Yoga {script}")
    for url in ("/status", f"/status/tenants/{owner.tenant_id}"):
        body = page.get(url).text
        assert script not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_events_that_cannot_be_read_are_listed_with_their_reason(
    page: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    home = calendar_of(engine, connection_id, "/alice/home/")
    reason = "a VEVENT without a DTSTART <b>"
    with session_scope(engine) as db:
        db.execute(update(ExternalCalendar).where(ExternalCalendar.id == home).values(unreadable={
            "external:dentist.ics": {"side": "external", "eventId": "dentist.ics",
                                     "reason": reason, "since": utcnow().isoformat()}}))

    shown = page.get(f"/status/tenants/{tenant.tenant_id}").text

    assert "1 event(s) cannot be read" in shown and "UNREADABLE" in shown
    assert "<code>dentist.ics</code> in the calendar" in shown
    assert "a VEVENT without a DTSTART &lt;b&gt;" in shown


def test_another_module_can_draw_a_panel_above_the_connections(
    api_settings: Settings, context: WorkerContext, tenant: TenantKey, engine: Engine
) -> None:
    def render(view: PanelView) -> Markup | None:
        return html("<h2>Side by side</h2><p>{{ who }} {{ base }}</p>",
                    who=f"<b>{view.tenant_id}</b>", base=view.route_base)  # fmt: skip

    routes = APIRouter()
    routes.add_api_route("/hello", lambda: {"hello": "panel"}, methods=["GET"])
    add_panel(Panel("side-by-side", render, routes))
    try:
        app = create_app(derive(api_settings, status_basic_auth=":".join(OPERATOR)))
        app.state.gate = context.gate
        with TestClient(app) as client:
            client.auth = OPERATOR
            body = client.get(f"/status/tenants/{tenant.tenant_id}").text
            assert client.get("/status/panels/side-by-side/hello").json() == {"hello": "panel"}
            hidden = client.get("/status/panels/side-by-side/hello", auth=("ops", "wrong"))
            assert hidden.status_code == 401
    finally:
        remove_panel("side-by-side")
    assert body.index("<h2>Side by side</h2>") < body.index("<h2>Connections</h2>")
    assert f"&lt;b&gt;{tenant.tenant_id}&lt;/b&gt; /status/panels/side-by-side" in body
