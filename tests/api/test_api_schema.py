"""schemathesis against /openapi.json: every operation, with valid and invalid generated input,
answers without a 5xx and as documented (status, content type, body schema)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import schemathesis.transport.requests
from conftest import TenantKey, derive, seed_connection
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from api.app import create_app
from config import Settings
from sandbox.caldav_servers import CalDAVServer, start_radicale
from tasks.context import WorkerContext

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]  # fmt: skip
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 8}


@pytest.fixture(scope="module")
def radicale() -> Iterator[CalDAVServer]:
    server = start_radicale()
    yield server
    server.stop()


def test_every_operation_answers_as_documented(
    api_settings: Settings, context: WorkerContext, engine: Engine, tenant: TenantKey,
    radicale: CalDAVServer, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # schemathesis counts the connections of requests' pools to resend on a dropped one; the
    # urllib3-future that niquests (caldav) installs has no such count. The ASGI client never
    # drops a connection, so nothing is lost.
    monkeypatch.setattr(schemathesis.transport.requests, "_count_opened_connections",
                        lambda session: 0)  # fmt: skip
    # Credentials go to a real CalDAV server on loopback: nothing leaves the machine.
    app_settings = derive(api_settings, apple_caldav_url=radicale.base_url)
    app = create_app(app_settings)
    app.state.gate = context.gate
    connection_id = seed_connection(engine, app_settings, tenant)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    assert len(operations) >= 25

    def prepared(case: Any) -> Any:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {tenant.key}"}
        if isinstance(case.body, dict) and "serverUrl" in case.body:
            case.body["serverUrl"] = radicale.base_url
        generated = (case.path_parameters or {}).get("connectionId")
        if isinstance(generated, str) and len(generated) % 2 == 0:
            case.path_parameters["connectionId"] = connection_id  # half go to a real one
        return case

    for operation in operations:
        for mode, count in EXAMPLES.items():
            strategy = operation.as_strategy(generation_mode=mode)

            @given(case=strategy)
            @settings(max_examples=count, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            def answers_as_documented(case: Any) -> None:
                prepared(case).call_and_validate(checks=CHECKS)

            try:
                answers_as_documented()
            except Unsatisfiable:
                # No invalid input exists for an operation that takes none (e.g. /healthz).
                assert mode is GenerationMode.NEGATIVE
