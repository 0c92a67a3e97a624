from __future__ import annotations

import sys
import threading

from harness.processes import alive, wait_until

from workers.supervisor import Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
CRASHER = [sys.executable, "-c", "raise SystemExit(3)"]


def test_dead_children_are_restarted_and_all_stop_together() -> None:
    supervisor = Supervisor(stop_timeout=5)
    steady = supervisor.add("steady", SLEEPER, {})
    crashing = supervisor.add("crashing", CRASHER, {})
    infrastructure = supervisor.add("infra", SLEEPER, {}, stops_last=True)
    runner = threading.Thread(target=supervisor.run, kwargs={"tick": 0.05})
    runner.start()
    try:
        wait_until(lambda: crashing.restarts >= 2, 15, "crash loop restarts")
        first_pid = steady.process.pid if steady.process else 0
    finally:
        supervisor.request_stop()
        runner.join(30)
    assert not runner.is_alive()
    assert steady.process is not None and steady.process.pid == first_pid
    for child in (steady, crashing, infrastructure):
        assert child.process is not None and not alive(child.process.pid)
