from __future__ import annotations

import threading

import pytest

from tasks.context import WorkerContext
from tasks.coordination import CalendarGate, LockLost


@pytest.fixture
def gate(context: WorkerContext) -> CalendarGate:
    """The gate a worker builds from its settings: on the coordination Redis, whatever the
    broker (its keys go with the context's)."""
    return context.gate


def test_one_writer_at_a_time(gate: CalendarGate) -> None:
    token = gate.acquire("cal-1")
    assert token is not None
    assert gate.acquire("cal-1") is None
    assert gate.acquire("cal-2") is not None  # other calendars are independent
    assert gate.release("cal-1", token) is True  # the refused attempt asked for one more run
    assert gate.release("cal-1", token) is False
    assert gate.acquire("cal-1") is not None


def test_notifications_during_a_run_cause_exactly_one_follow_up(gate: CalendarGate) -> None:
    token = gate.acquire("cal")
    assert token is not None
    for _ in range(50):  # fifty syncs arrive while the first one runs
        assert gate.acquire("cal") is None
    assert gate.release("cal", token) is True  # run once more, still holding the lock
    assert gate.acquire("cal") is None  # ...which this one marks dirty again
    assert gate.release("cal", token) is True
    assert gate.release("cal", token) is False  # nothing new: released


def test_no_notification_is_lost_between_check_and_release(gate: CalendarGate) -> None:
    """Hammer acquire from threads while the holder releases: every loser's mark is seen by a
    holder, so each round ends with someone running after the last mark."""
    lost = 0
    for _ in range(200):
        token = gate.acquire("race")
        assert token is not None
        marked = threading.Event()

        def notify(marked: threading.Event = marked) -> None:
            if gate.acquire("race") is None:
                marked.set()
            else:  # it got the lock after release: it would run the sync itself
                marked.clear()

        thread = threading.Thread(target=notify)
        thread.start()
        follow_up = gate.release("race", token)
        thread.join()
        if marked.is_set() and not follow_up:
            lost += 1
        if follow_up:
            assert gate.release("race", token) is False
        else:
            # The notifier may hold the lock now; clean up for the next round.
            gate.client.delete(*gate._keys("race"))
    assert lost == 0


def test_an_expired_lock_is_reported_lost(gate: CalendarGate) -> None:
    token = gate.acquire("cal")
    assert token is not None
    gate.client.delete(gate._keys("cal")[0])  # as if it had timed out
    other = gate.acquire("cal")
    assert other is not None
    with pytest.raises(LockLost):
        gate.extend("cal", token)
    with pytest.raises(LockLost):
        gate.release("cal", token)


def test_a_burst_of_webhooks_enqueues_one_task(gate: CalendarGate) -> None:
    assert [gate.mark_queued("cal") for _ in range(20)].count(True) == 1
    gate.clear_queued("cal")  # the task started
    assert gate.mark_queued("cal") is True
