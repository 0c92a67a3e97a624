"""The fault matrix: a burst of changes in both directions while one fault strikes, a row per
fault, each counting what was lost or duplicated, against a row with no fault in the same run.

    python -m bench.fault_matrix [--changes 200] [--rate 50] [--slow-ms 20] [--timeout 100]
                                 [--seed 18] [--log-level WARNING] [--only NAME] [--write-doc]

Each row gets its own deployment (`bench/faults/deployment.py`): a private Redis with an
append-only file, a fresh database on a private PostgreSQL that this command starts (never the
machine's shared ones), the local store as both calendar systems, and the API, one worker and
beat as processes. People make `--changes` changes, half on each side, at `--rate` a second
(`bench/faults/burst.py`); the row's fault (`bench/faults/catalogue.py`) strikes from the start
or half-way through. Then the store is read until both sides agree (every event a person has
has exactly one copy on the other side with the same fields, and nothing else is there) and
the broker holds no task that could still change them. A row
that has not converged after `--timeout` seconds reports what is still missing (lost), copied
twice (duplicated) or copied from nothing (extra). Exits 1 if any row lost, duplicated or left
extras. `--write-doc` puts the table in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from bench.faults.burst import Person, Tally, burst, tally
from bench.faults.catalogue import FAULTS, Fault, LossyPusher, injected, nothing
from bench.faults.deployment import Deployment, deployed
from models.crypto import new_key
from sandbox.store import StoreState
from tests.harness import services
from tests.harness.pipeline import broker_drained

DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
BEGIN, END = "<!-- fault-matrix:begin -->", "<!-- fault-matrix:end -->"


@dataclass(frozen=True)
class Row:
    fault: Fault
    made: int
    tally: Tally
    seconds: float | None  # from the last change until the sides agree for good; None: never
    crashed: list[str]  # processes that died by themselves (and were started again)
    struck: str  # how long the fault took to strike, what the store's faults did

    @property
    def sound(self) -> bool:
        return self.tally.converged


def run_row(fault: Fault, postgres: services.Service, args: argparse.Namespace, key: str,
            logs: Path) -> Row:  # fmt: skip
    store = StoreState(slow_ms=args.slow_ms, pusher=LossyPusher())
    (logs / fault.name).mkdir()
    folder = logs / fault.name
    with deployed(postgres, store, key, folder, args.log_level) as deployment, \
         httpx.Client() as client:  # fmt: skip
        person = Person(client, deployment.settings.wix_local_store_url or "",
                        random.Random(args.seed))  # fmt: skip
        fault.at_start(deployment)
        took: list[float] = []
        striking = threading.Thread(target=timed, args=(fault.midway, deployment, took),
                                    daemon=True)  # fmt: skip
        burst(person, args.changes, args.rate, lambda: strike(striking, fault.pauses_burst))
        found, seconds = settle(deployment, args.timeout)
        striking.join()
        crashed = list(deployment.crashed)
    down = f"took {took[0]:.1f} s" if took and fault.midway is not nothing else ""
    struck = ", ".join(filter(None, [down, injected(store)])) or "-"
    return Row(fault, sum(person.made.values()), found, seconds, crashed, struck)


def strike(striking: threading.Thread, pauses_burst: bool) -> None:
    striking.start()
    if pauses_burst:
        striking.join()


def timed(strike: Callable[[Deployment], None], deployment: Deployment, took: list[float]
          ) -> None:  # fmt: skip
    """`strike(deployment)`, and the seconds it took (a restart: until the process is up)."""
    started = time.monotonic()
    strike(deployment)
    took.append(time.monotonic() - started)


def settle(deployment: Deployment, timeout: float) -> tuple[Tally, float | None]:
    """Watch the store until both sides agree and the broker holds nothing more that could
    change them (a redelivered task could still write a duplicate); the tally then, and the
    seconds until the sides last came to agree. After `timeout`: the tally as it stands."""
    finished = time.monotonic()
    agreed: float | None = None
    while time.monotonic() - finished < timeout:
        found = tally(deployment.store)
        if not found.converged:
            agreed = None
        elif agreed is None:
            agreed = time.monotonic() - finished
        if found.converged and drained(deployment):
            return found, agreed
        time.sleep(0.2)
    return tally(deployment.store), None


def drained(deployment: Deployment) -> bool:
    try:
        return broker_drained(deployment.context)
    except redis.ConnectionError:  # Redis is being restarted
        return False


def table(rows: list[Row]) -> str:
    lines = ["| row | fault | changes made | copies expected | lost | duplicated | extra "
             "| time to converge | fault | crashed by themselves |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]  # fmt: skip
    for row in rows:
        t = row.tally
        took = "not within the timeout" if row.seconds is None else f"{row.seconds:.1f} s"
        lines.append(f"| {row.fault.name} | {row.fault.what} | {row.made} | {t.expected} "
                     f"| {t.lost} | {t.duplicated} | {t.extra} | {took} | {row.struck} "
                     f"| {', '.join(row.crashed) or '-'} |")  # fmt: skip
    return "\n".join(lines)


def ratios(rows: list[Row]) -> str:
    baseline = rows[0].seconds if rows and rows[0].fault.name == "baseline" else None
    if not baseline:
        return ""
    parts = [f"{row.fault.name} {row.seconds / baseline:.1f}x" for row in rows[1:]
             if row.seconds is not None]  # fmt: skip
    return f"Time to converge against the baseline row: {', '.join(parts)}."


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    head, rest = doc.split(BEGIN, 1)
    DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="changes per second")
    parser.add_argument("--timeout", type=float, default=100.0, help="seconds to converge")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--slow-ms", type=int, default=20, help="ms per provider call")
    parser.add_argument("--log-level", default="WARNING", help="of calsync's processes")
    parser.add_argument("--only", action="append", help="run only this row (repeatable)")
    parser.add_argument("--write-doc", action="store_true", help="update docs/reliability.md")
    args = parser.parse_args()

    faults = [f for f in FAULTS if not args.only or f.name in args.only]
    logs = Path(tempfile.mkdtemp(prefix="calsync-faults-"))
    postgres, key, rows = services.start_private_postgres(), new_key(), []
    started = time.monotonic()
    try:
        for fault in faults:
            rows.append(run_row(fault, postgres, args, key, logs))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    finally:
        postgres.stop()
    took = time.monotonic() - started
    summary = (f"{table(rows)}\n\n{ratios(rows)}\n\n{args.changes} changes at {args.rate:g}/s "
               f"per row, provider calls {args.slow_ms} ms each; the matrix took "
               f"{took:.0f} s.")  # fmt: skip
    print(f"\n{summary}\n(process logs: {logs})")
    if args.write_doc:
        write_doc(summary)
    sys.exit(0 if all(row.sound for row in rows) else 1)


if __name__ == "__main__":
    main()
