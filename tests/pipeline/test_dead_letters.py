"""A change that keeps failing is parked after N runs, skipped, listed and retried from the CLI."""

from __future__ import annotations

import subprocess
import sys

import httpx
from harness.env import settings_env
from harness.pipeline import Pair
from sqlalchemy import Engine, select

from config import Settings
from models import DeadLetter, DeadLetterStatus
from models.db import session_scope
from tasks.context import WorkerContext
from tasks.runner import run_calendar


def letters(engine: Engine) -> list[DeadLetter]:
    with session_scope(engine) as db:
        return list(db.scalars(select(DeadLetter)))


def refused(pair: Pair) -> int:
    log = httpx.get(f"{pair.store_url}/_store/requests").json()["requests"]
    return sum(1 for r in log if r["status"] == 422)


def calsync(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers", *args], env=settings_env(settings),
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_poisoned_change_is_parked_and_does_not_block_the_rest(
    pair: Pair, context: WorkerContext, engine: Engine, pipeline_settings: Settings
) -> None:
    pair.person_adds(pair.external, "Poison pill")
    pair.person_adds(pair.external, "Fine", hour=2)
    httpx.post(f"{pair.store_url}/_store/faults", json={
        "status": 422, "times": 1000, "method": "POST", "pathContains": "/calendars/wix-s1/",
        "bodyContains": "Poison",
    })  # fmt: skip
    limit = pipeline_settings.dead_letter_after
    for attempt in range(1, limit + 1):
        run_calendar(context, pair.calendar_id, "reconcile", full=True)
        [letter] = letters(engine)
        assert letter.attempts == attempt
    assert letters(engine)[0].status is DeadLetterStatus.PARKED
    assert pair.titles(pair.wix) == ["Fine"]
    before = refused(pair)
    run_calendar(context, pair.calendar_id, "reconcile", full=True)
    assert refused(pair) == before  # parked: not even tried

    listed = calsync(pipeline_settings, "deadletters", "list")
    assert listed.returncode == 0, listed.stderr
    assert "PARKED" in listed.stdout and "1 dead letter(s)" in listed.stdout

    httpx.delete(f"{pair.store_url}/_store/faults")  # the provider accepts it now
    retried = calsync(pipeline_settings, "deadletters", "retry", letters(engine)[0].id)
    assert retried.returncode == 0, retried.stderr
    run_calendar(context, pair.calendar_id, "retry", full=True)
    assert pair.titles(pair.wix) == ["Fine", "Poison pill"]
    assert letters(engine) == []


def test_retrying_an_unknown_letter_is_a_clear_error(pipeline_settings: Settings) -> None:
    result = calsync(pipeline_settings, "deadletters", "retry", "nope")
    assert result.returncode == 2
    assert result.stderr.strip() == "calsync: no dead letter nope"
