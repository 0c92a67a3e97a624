"""Per-tenant rate limits on the API, against the real Redis (each test under its own key
prefix): a burst, then 429 with `Retry-After` and the RateLimit headers; other tenants, strangers
and the unlimited routes unaffected; tokens refilling as the bucket's clock moves on; the API
going on unlimited when Redis is unreachable."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from conftest import TenantKey, derive
from fastapi.testclient import TestClient
from harness.relay import relay_to
from httpx import Response

from api.app import create_app
from api.rate_limits import TenantBuckets
from config import Settings
from sandbox.server import free_port
from tasks.context import WorkerContext

PROVIDERS = "/bookings/v2/external-calendars/providers"
V1_STATUS = "/bookings/v1/externalCalendar/status"
RATE, BURST = 0.4, 3  # a token every 2.5 s: Retry-After rounds it up to 3


class Clock:
    """The bucket's time, moved on by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


Limited = Callable[..., TestClient]


@pytest.fixture
def limited(api_settings: Settings, context: WorkerContext) -> Iterator[Limited]:
    """An app with a small limit; with a `clock`, its buckets keep the test's time."""
    opened: list[TestClient] = []

    def open_app(clock: Clock | None = None, client: redis.Redis | None = None,
                 **settings: float) -> TestClient:  # fmt: skip
        limits = {"api_rate_limit_per_second": RATE, "api_rate_limit_burst": BURST, **settings}
        app = create_app(derive(api_settings, **limits))
        app.state.gate = context.gate
        if clock is not None or client is not None:
            app.state.tenant_buckets = TenantBuckets(
                client or context.redis, api_settings.broker_key_prefix,
                app.state.settings.api_rate_limit_per_second, BURST, clock=clock)  # fmt: skip
        opened.append(TestClient(app).__enter__())
        return opened[-1]

    yield open_app
    for client in opened:
        client.__exit__(None, None, None)


def limits(answer: Response) -> tuple[str | None, str | None, str | None]:
    found = answer.headers.get
    return found("RateLimit-Limit"), found("RateLimit-Remaining"), found("RateLimit-Reset")


def test_a_burst_then_429_with_retry_after_and_the_ratelimit_headers(
    limited: Limited, tenant: TenantKey
) -> None:
    api = limited(Clock())
    answers = [api.get(PROVIDERS, headers=tenant.headers) for _ in range(BURST)]
    assert [a.status_code for a in answers] == [200] * BURST
    # Full again after (3 - tokens left) / 0.4 s, rounded up.
    assert [limits(a) for a in answers] == [("3", "2", "3"), ("3", "1", "5"), ("3", "0", "8")]

    refused = api.get(V1_STATUS, headers=tenant.headers)  # one bucket for v1 and v2
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "3"
    assert limits(refused) == ("3", "0", "8")
    body = refused.json()
    assert body["details"]["code"] == "RESOURCE_EXHAUSTED"
    assert "0.4/s" in body["message"] and "bursts of 3" in body["message"]


def test_tokens_refill_as_time_passes(limited: Limited, tenant: TenantKey) -> None:
    clock = Clock()
    api = limited(clock)
    for _ in range(BURST):
        api.get(PROVIDERS, headers=tenant.headers)
    assert api.get(PROVIDERS, headers=tenant.headers).status_code == 429
    clock.now += 2.4
    assert api.get(PROVIDERS, headers=tenant.headers).status_code == 429  # not quite one token
    clock.now += 0.2
    again = api.get(PROVIDERS, headers=tenant.headers)
    assert (again.status_code, limits(again)[1]) == (200, "0")
    clock.now += 60  # never more than the burst
    assert limits(api.get(PROVIDERS, headers=tenant.headers)) == ("3", "2", "3")


def test_another_tenant_keeps_its_own_bucket(
    limited: Limited, tenant: TenantKey, other: TenantKey
) -> None:
    api = limited(Clock())
    for _ in range(BURST + 2):
        api.get(PROVIDERS, headers=tenant.headers)
    assert api.get(PROVIDERS, headers=tenant.headers).status_code == 429
    theirs = api.get(PROVIDERS, headers=other.headers)
    assert (theirs.status_code, limits(theirs)[1]) == (200, "2")


def test_a_request_without_a_good_key_spends_no_tokens(limited: Limited, tenant: TenantKey) -> None:
    api = limited()  # Redis's own time
    wrong = [{}, {"Authorization": "Bearer csk_not-a-key"},
             {"Authorization": f"Bearer {tenant.key}x"}]  # fmt: skip
    strangers = [api.get(PROVIDERS, headers=headers) for headers in wrong * BURST]
    assert {s.status_code for s in strangers} == {401}
    assert all(limits(s) == (None, None, None) for s in strangers)
    first = api.get(PROVIDERS, headers=tenant.headers)
    assert (first.status_code, limits(first)[:2]) == (200, ("3", "2"))
    assert [api.get(V1_STATUS, headers=tenant.headers).status_code for _ in range(3)] == [
        200, 200, 429]  # fmt: skip


def test_errors_of_a_granted_request_carry_the_headers_and_open_routes_none(
    limited: Limited, tenant: TenantKey
) -> None:
    api = limited(Clock())
    missing = api.get("/bookings/v2/external-calendars/connections/nope", headers=tenant.headers)
    assert (missing.status_code, limits(missing)) == (404, ("3", "2", "3"))
    for _ in range(BURST * 2):
        health = api.get("/healthz", headers=tenant.headers)
        assert (health.status_code, limits(health)) == (200, (None, None, None))
    assert api.get("/metrics", headers=tenant.headers).status_code == 200


def test_a_zero_rate_turns_the_limit_off(limited: Limited, tenant: TenantKey) -> None:
    api = limited(api_rate_limit_per_second=0)
    answers = [api.get(PROVIDERS, headers=tenant.headers) for _ in range(BURST * 3)]
    assert {a.status_code for a in answers} == {200}
    assert all(limits(a) == (None, None, None) for a in answers)


def test_unreachable_redis_lets_requests_through_and_warns_once(
    limited: Limited, tenant: TenantKey, caplog: pytest.LogCaptureFixture
) -> None:
    with relay_to(free_port()) as cut_off:
        cut_off.cut()  # a Redis that hangs up on every connection
        api = limited(client=redis.Redis(host="127.0.0.1", port=cut_off.port))
        with caplog.at_level(logging.WARNING, logger="api.rate_limits"):
            first = api.get(PROVIDERS, headers=tenant.headers)
            tried = cut_off.refused
            answers = [api.get(PROVIDERS, headers=tenant.headers) for _ in range(BURST + 2)]
    assert {a.status_code for a in [first, *answers]} == {200}
    assert tried > 0 and cut_off.refused == tried  # the next requests did not ask again
    warnings = [r for r in caplog.records if r.name == "api.rate_limits"]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()


def test_the_openapi_document_gives_429_to_the_limited_operations_only(
    limited: Limited,
) -> None:
    paths = limited().get("/openapi.json").json()["paths"]
    limited_ops = {(p, m) for p, ops in paths.items() for m, op in ops.items()
                   if "429" in op["responses"]}  # fmt: skip
    assert ("/bookings/v2/external-calendars/providers", "get") in limited_ops
    assert ("/bookings/v1/externalCalendar/sync", "post") in limited_ops
    assert all(p.startswith("/bookings/") for p, _ in limited_ops)
    too_many = paths[PROVIDERS]["get"]["responses"]["429"]
    assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
        too_many["headers"])  # fmt: skip
    assert "RateLimit-Remaining" in paths[PROVIDERS]["get"]["responses"]["200"]["headers"]
    assert "429" not in paths["/healthz"]["get"]["responses"]
