"""The Grafana dashboard in deploy/ shows what /metrics serves: every metric it queries is one the
API exposes, every calsync metric has a panel, and the provisioning wires Prometheus to the API."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from harness.clock import now
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from api.app import create_app
from config import Settings
from models import Connection, ExternalCalendar, Provider, PushChannel, Tenant
from models.db import session_scope

DEPLOY = Path(__file__).parents[2] / "deploy"
DASHBOARD = json.loads((DEPLOY / "grafana/dashboard.json").read_text())
SAMPLE_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def queries() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])]


def family_of(name: str) -> str:
    for suffix in SAMPLE_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


@pytest.fixture
def exposed(settings: Settings, engine: Engine) -> set[str]:
    """The calsync families /metrics serves, with one push channel so that its expiry shows."""
    with session_scope(engine) as db:
        tenant = Tenant(wix_instance_id="dashboard")
        db.add(tenant)
        db.flush()
        connection = Connection(tenant_id=tenant.id, provider=Provider.GOOGLE, schedule_id="s")
        db.add(connection)
        db.flush()
        calendar = ExternalCalendar(connection_id=connection.id, remote_id="primary")
        db.add(calendar)
        db.flush()
        db.add(PushChannel(calendar_id=calendar.id, provider="google", channel_id="ch",
                           expires_at=now() + timedelta(days=1)))  # fmt: skip
    client = TestClient(create_app(settings))
    client.get("/healthz")  # an HTTP request, so that its families have samples
    body = client.get("/metrics").text
    return {family_of(family.name) for family in text_string_to_metric_families(body)
            if family.name.startswith("calsync_")}  # fmt: skip


def test_the_dashboard_queries_only_what_metrics_exposes_and_shows_all_of_it(
    exposed: set[str],
) -> None:
    used = {family_of(name) for expr in queries() for name in re.findall(r"\bcalsync_\w+", expr)}
    assert used, "the dashboard queries no calsync metric"
    assert used - exposed == set(), f"not on /metrics: {sorted(used - exposed)}"
    assert exposed - used == set(), f"no panel for: {sorted(exposed - used)}"


def test_every_panel_reads_the_provisioned_prometheus() -> None:
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text()
    )["datasources"]
    uids = {source["uid"] for source in provisioned}
    panels = [panel for panel in DASHBOARD["panels"] if panel["type"] != "row"]
    assert panels and all(panel["datasource"]["uid"] in uids for panel in panels)
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))


def test_compose_scrapes_the_api_and_mounts_the_dashboard_where_grafana_looks() -> None:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]
    targets = [t for job in scrape for config in job["static_configs"] for t in config["targets"]]
    assert targets == ["api:8000"] and "8000:8000" in services["api"]["ports"]
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in scrape)
    mounts = dict(volume.split(":")[:2] for volume in services["grafana"]["volumes"])
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/calsync.yaml").read_text()
    )["providers"][0]
    assert mounts["./grafana/dashboard.json"].startswith(provider["options"]["path"] + "/")
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    prometheus = dict(volume.split(":")[:2] for volume in services["prometheus"]["volumes"])
    assert prometheus["./prometheus.yml"] == "/etc/prometheus/prometheus.yml"
