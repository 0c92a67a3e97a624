"""schemathesis against /openapi.json: every operation, with valid and invalid generated input,
answers without a 5xx and as documented (status, content type, body schema), and input the
document calls valid is not refused for breaking a rule the document could have stated.

`CALSYNC_FUZZ_EXAMPLES` sets the valid examples per operation (invalid ones: a third as many);
`CALSYNC_FUZZ_MIN_REQUESTS` the requests the run must have sent (`make fuzz`)."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
import schemathesis.transport.requests
from conftest import TenantKey, derive, seed_connection
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import PositiveDataAcceptanceConfig
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, text

from api.app import create_app
from api.errors import RULE_CODES
from config import Settings
from sandbox.caldav_servers import CalDAVServer, start_radicale
from tasks.context import WorkerContext

EXAMPLES = int(os.environ.get("CALSYNC_FUZZ_EXAMPLES", "12"))  # make fuzz: 300
MIN_REQUESTS = int(os.environ.get("CALSYNC_FUZZ_MIN_REQUESTS", "0"))
MODES = {GenerationMode.POSITIVE: EXAMPLES, GenerationMode.NEGATIVE: max(1, EXAMPLES // 3)}
# Answers valid input may get: success, and refusals about state, not shape (no key, a
# disabled tenant, an id that is not there, a state that forbids it, a provider without the
# feature, a rate limit, a broker that is down).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "428", "429", "503"]
# Browser pages that take only what calsync issued (the OAuth state, an approval's ticket):
# any other value gets an error page.
ISSUED_TOKENS_ONLY = ("/oauth/", "/approve/")


def valid_input_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's positive_data_acceptance, except a 400 with one of the codes
    (`api.errors.RULE_CODES`) the document gives for rules it can only put in words."""
    if response.status_code == 400 and _code(response) in RULE_CODES:
        return None
    if case.operation.path.startswith(ISSUED_TOKENS_ONLY):
        return None
    return positive_data_acceptance(ctx, response, case)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, valid_input_accepted]  # fmt: skip


def _code(response: Any) -> str | None:
    try:
        return str(response.json()["details"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


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
    # Credentials go to a real CalDAV server on loopback: nothing leaves the machine. The rate
    # limit is off: thousands of requests from one tenant are the point here.
    app_settings = derive(api_settings, apple_caldav_url=radicale.base_url,
                          api_rate_limit_per_second=0)  # fmt: skip
    app = create_app(app_settings)
    app.state.gate = context.gate
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=ACCEPTED
    )
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    assert len(operations) >= 25
    sent: Counter[tuple[str, int]] = Counter()
    started = time.monotonic()

    for number, operation in enumerate(operations):
        # Each operation gets a live connection of its own: Disconnect leaves one for good.
        connection_id = seed_connection(engine, app_settings, tenant, schedule=f"sched-{number}")
        for mode, count in MODES.items():
            run = _examples(operation, mode, count, _preparer(tenant, connection_id, radicale),
                            sent, lambda: _footprint(engine))  # fmt: skip
            try:
                run()
            except Unsatisfiable:
                # No invalid input exists for an operation that takes none (e.g. /healthz).
                assert mode is GenerationMode.NEGATIVE

    total = sum(sent.values())
    by_status = Counter[int]()
    for (_, status), count in sent.items():
        by_status[status] += count
    seconds = time.monotonic() - started
    print(f"\nschemathesis: {total} requests over {len(operations)} operations in {seconds:.0f} s;"
          f" by status {dict(sorted(by_status.items()))}")  # fmt: skip
    assert not [status for status in by_status if status >= 500]
    assert total >= max(MIN_REQUESTS, len(operations))


def _preparer(tenant: TenantKey, connection_id: str, radicale: CalDAVServer
              ) -> Callable[[Any], Any]:  # fmt: skip
    def prepared(case: Any) -> Any:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {tenant.key}"}
        if isinstance(case.body, dict):
            _aim_at_loopback(case.body, radicale.base_url)
        generated = (case.path_parameters or {}).get("connectionId")
        if isinstance(generated, str) and len(generated) % 2 == 0:
            case.path_parameters["connectionId"] = connection_id  # half go to a real one
        return case

    return prepared


def _examples(operation: Any, mode: GenerationMode, count: int,
              prepared: Callable[[Any], Any], sent: Counter[tuple[str, int]],
              footprint: Callable[[], str]) -> Callable[[], None]:  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=count, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def answers_as_documented(case: Any) -> None:
        before = footprint()
        response = prepared(case).call_and_validate(checks=CHECKS)
        sent[mode.value, response.status_code] += 1
        if 400 <= response.status_code < 500:
            assert footprint() == before, "a refused request changed the database"

    return answers_as_documented


# Every table a request may write; a refused one leaves them all as they were.
WRITTEN = ("tenants", "connections", "external_calendars", "push_channels", "links", "inbox",
           "sync_requests", "sync_runs", "conflicts", "dead_letters", "break_alerts")  # fmt: skip
FOOTPRINT = text("SELECT " + " || ".join(
    f"coalesce((SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t), '-')"
    for table in WRITTEN
))  # fmt: skip


def _footprint(engine: Engine) -> str:
    with engine.connect() as db:
        return str(db.execute(FOOTPRINT).scalar_one())


def _aim_at_loopback(body: dict[str, Any], caldav_url: str) -> None:
    """Generated servers and webhook hosts are aimed at loopback, so that checking them asks
    no name server and reaches nothing beyond this machine."""
    if "serverUrl" in body:
        body["serverUrl"] = caldav_url
    wanted = body.get("notificationSettings")
    if isinstance(wanted, dict) and isinstance(wanted.get("webhookUrl"), str):
        wanted["webhookUrl"] = _on_localhost(wanted["webhookUrl"])


def _on_localhost(url: str) -> str:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return url
    return url.replace(host, "localhost", 1) if host else url


METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def test_a_wrong_method_answers_405_with_the_documented_methods(
    client: TestClient, tenant: TenantKey
) -> None:
    """`connections/{id}:resync` and the other `:verb` paths are not taken for the id of the
    path before them: every method a path does not document answers 405 naming those it does."""
    for template, operations in client.get("/openapi.json").json()["paths"].items():
        path = template.format_map(_Filled())
        allowed = {method.upper() for method in operations}
        for method in sorted(METHODS - allowed):
            answer = client.request(method, path, headers=tenant.headers)
            assert answer.status_code == 405, (method, path)
            assert set(answer.headers["Allow"].split(", ")) == allowed, (method, path)


class _Filled(dict[str, str]):
    def __missing__(self, name: str) -> str:
        return "9d0c3f5a6b7e"  # any id will do: the method is refused before it is looked up
