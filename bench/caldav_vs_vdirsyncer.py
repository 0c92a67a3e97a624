"""calsync's CalDAV provider against vdirsyncer, on one local Radicale, in one run.

    python -m bench.caldav_vs_vdirsyncer [--events 1000] [--rounds 2]

(a) import: N events a person made in a Radicale calendar. calsync: the path of a sync run
    (`tasks.apply.read_side` on both sides, `sync.plan`, `tasks.apply.apply_plan` with a
    `DictLinkStore`) into a `MemoryCalendar` standing for the Wix side. vdirsyncer: `sync` of
    a pair from that calendar to a filesystem storage.
(b) export: N sessions from a `MemoryCalendar` Wix side to an empty Radicale calendar through
    the same path. vdirsyncer: `sync` of the same N events (the bodies calsync writes) from a
    filesystem storage to another empty Radicale calendar.

vdirsyncer runs as a subprocess with a config written here (its `discover` is timed apart, as
a one-time setup like calsync's calendar listing); its interpreter start-up is measured too
(`vdirsyncer --version`) and the ratios are also given net of it. Both write one event at a
time: vdirsyncer runs a pair's actions in order, `apply_plan` applies a plan in order.
Each round uses fresh calendars and alternates which tool goes first; the best round counts
(the shared machine's noise is of the order of the difference on export, which is Radicale's
time per PUT for both).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from caldav.davclient import DAVClient

from providers.base import CalendarInfo, CalendarProvider, SyncWindow
from providers.caldav.account import CalDAVAccount
from providers.caldav.events import new_calendar, new_vevent, render
from providers.local.memory import MemoryCalendar
from sandbox.caldav_servers import CalDAVServer, start_radicale
from sync.event import CanonicalEvent
from sync.planner import plan
from sync.policy import ConnectionPolicy
from sync.side import Side
from tasks.apply import DictLinkStore, apply_plan, read_side
from tests.harness.caldav_servers import event_ics

# A year from tomorrow: the events start on its first day, whenever the benchmark runs.
FIRST = (datetime.now(UTC) + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
WINDOW = SyncWindow(FIRST - timedelta(days=1), FIRST + timedelta(days=366))
ZONES = (ZoneInfo("Europe/London"), ZoneInfo("America/New_York"), None)
VDIRSYNCER = Path(sys.executable).parent / "vdirsyncer"


@dataclass
class Figures:
    """Seconds per round, for each tool; a round runs both, alternating who goes first."""

    calsync: list[float] = field(default_factory=list)
    vdirsyncer: list[float] = field(default_factory=list)
    discover: list[float] = field(default_factory=list)


def slot(n: int) -> tuple[datetime, ZoneInfo | None]:
    zone = ZONES[n % len(ZONES)]
    start = FIRST + timedelta(days=n % 360, hours=n % 9)
    return (start.astimezone(zone) if zone else start), zone


def person_events(count: int) -> list[tuple[str, str]]:
    events = []
    for n in range(count):
        start, _ = slot(n)
        uid = f"person-{n:05d}"
        events.append((uid, event_ics(uid, start, start + timedelta(minutes=45), f"Busy {n}")))
    return events


def sessions(count: int) -> list[CanonicalEvent]:
    found = []
    for n in range(count):
        start, zone = slot(n)
        found.append(CanonicalEvent(
            f"Session {n}", start, start + timedelta(hours=1), description="Yoga, level 2",
            location="Studio 1", time_zone=None if zone is None else zone.key,
        ))  # fmt: skip
    return found


def make_calendar(client: DAVClient, server: CalDAVServer, name: str) -> str:
    url = f"{server.home_url}{name}/"
    response = client.mkcalendar(url, "")
    assert response.status == 201, response.status
    return url


def fill(client: DAVClient, url: str, events: list[tuple[str, str]]) -> None:
    headers = {"Content-Type": "text/calendar; charset=utf-8"}

    def put(event: tuple[str, str]) -> None:
        assert client.put(f"{url}{event[0]}.ics", event[1], headers).status == 201

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, events))


def count_members(client: DAVClient, url: str) -> int:
    response = client.propfind(url, "", depth=1)
    return response.raw.count("<response>") - 1


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def policy() -> ConnectionPolicy:
    return ConnectionPolicy(owner_id="bench", tag="caldav")


def run_calsync(server: CalDAVServer, url: str, wix: MemoryCalendar) -> int:
    """One sync run of a connection: read both sides, plan, apply. Returns actions done."""
    account = CalDAVAccount(server.base_url, server.username, server.password,
                            allow_private=True)  # fmt: skip
    external = account.calendar(CalendarInfo(url), WINDOW)
    providers: dict[Side, CalendarProvider] = {Side.WIX: wix, Side.EXTERNAL: external}
    wix_side, _ = read_side(providers[Side.WIX], Side.WIX, None)
    ext_side, _ = read_side(providers[Side.EXTERNAL], Side.EXTERNAL, None)
    result = plan(wix_side, ext_side, [], policy())
    applied = apply_plan(result, providers, DictLinkStore())
    account.close()
    assert not applied.failed and applied.stopped_by is None, applied.failed[:3]
    return len(applied.done)


class Vdirsyncer:
    """vdirsyncer configured from here: one pair per direction, its state in a temp dir."""

    def __init__(self, root: Path, server: CalDAVServer) -> None:
        self.root, self.server = root, server
        self.config = root / "config"
        self.pairs: list[str] = []

    def pair(self, name: str, remote_url: str, local: Path, upload: bool) -> None:
        local.mkdir(parents=True, exist_ok=True)
        remote, filesystem = f"{name}_remote", f"{name}_local"
        a, b = (filesystem, remote) if upload else (remote, filesystem)
        self.pairs.append(
            f'[pair {name}]\na = "{a}"\nb = "{b}"\ncollections = null\n\n'
            f'[storage {remote}]\ntype = "caldav"\nurl = "{remote_url}"\n'
            f'username = "{self.server.username}"\npassword = "{self.server.password}"\n\n'
            f'[storage {filesystem}]\ntype = "filesystem"\npath = "{local}"\nfileext = ".ics"\n'
        )
        status = self.root / "status"
        self.config.write_text(f'[general]\nstatus_path = "{status}/"\n\n' + "\n".join(self.pairs))

    def run(self, *args: str) -> float:
        env = {"VDIRSYNCER_CONFIG": str(self.config), "PATH": "/usr/bin:/bin",
               "HOME": str(self.root)}  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run([str(VDIRSYNCER), *args], env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"vdirsyncer {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return elapsed


def import_round(bench: Bench, source: str, n: int, figures: Figures) -> None:
    def ours() -> None:
        wix = MemoryCalendar("wix")
        figures.calsync.append(timed(lambda: run_calsync(bench.server, source, wix)))
        assert len(wix.events()) == bench.count, len(wix.events())

    def theirs() -> None:
        local = bench.vdir.root / f"import-local-{n}"
        bench.vdir.pair(f"imp{n}", source, local, upload=False)
        figures.discover.append(bench.vdir.run("discover", f"imp{n}"))
        figures.vdirsyncer.append(bench.vdir.run("sync", f"imp{n}"))
        assert len(list(local.glob("*.ics"))) == bench.count

    for step in (ours, theirs) if n % 2 == 0 else (theirs, ours):
        step()


def export_round(bench: Bench, n: int, figures: Figures) -> None:
    def ours() -> None:
        url = make_calendar(bench.client, bench.server, f"export-calsync-{n}")
        wix = MemoryCalendar("wix")
        for event in sessions(bench.count):
            wix.add(event)
        figures.calsync.append(timed(lambda: run_calsync(bench.server, url, wix)))
        assert count_members(bench.client, url) == bench.count

    def theirs() -> None:
        url = make_calendar(bench.client, bench.server, f"export-vdirsyncer-{n}")
        local = bench.vdir.root / f"export-local-{n}"
        local.mkdir()
        for m, event in enumerate(sessions(bench.count)):
            calendar = new_calendar()
            calendar.add_component(new_vevent(f"session-{m:05d}", event, None))
            (local / f"session-{m:05d}.ics").write_text(render(calendar))
        bench.vdir.pair(f"exp{n}", url, local, upload=True)
        figures.discover.append(bench.vdir.run("discover", f"exp{n}"))
        figures.vdirsyncer.append(bench.vdir.run("sync", f"exp{n}"))
        assert count_members(bench.client, url) == bench.count

    for step in (ours, theirs) if n % 2 == 0 else (theirs, ours):
        step()


def report(count: int, rounds: int, results: dict[str, Figures], startup: float) -> None:
    print(f"\nCalDAV provider vs vdirsyncer: {count} events, one local Radicale, best of {rounds}")
    header = f"{'':8}{'calsync':>9}{'vdirsyncer':>12}{'ratio':>7}{'net':>6}"
    print(f"{header}   each round (calsync/vdirsyncer)")
    for name, f in results.items():
        ours, theirs = min(f.calsync), min(f.vdirsyncer)
        net = ours / max(theirs - startup, 1e-9)
        each = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(f.calsync, f.vdirsyncer, strict=True))
        print(f"{name:8}{ours:>8.2f}s{theirs:>11.2f}s{ours / theirs:>7.2f}{net:>6.2f}   {each}")
    discover = min(results["import"].discover)
    print(
        f"ratio = calsync / vdirsyncer sync (its discover, timed apart: {discover:.2f}s); "
        f"net = against vdirsyncer less its interpreter start-up ({startup:.2f}s)"
    )


@dataclass
class Bench:
    server: CalDAVServer
    client: DAVClient
    vdir: Vdirsyncer
    count: int


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    server = start_radicale()
    results = {"import": Figures(), "export": Figures()}
    try:
        client = DAVClient(url=server.base_url, username=server.username,
                           password=server.password)  # fmt: skip
        client.principal()  # Radicale makes the user's home on first access
        with tempfile.TemporaryDirectory(prefix="calsync-vdirsyncer-") as root:
            bench = Bench(server, client, Vdirsyncer(Path(root), server), args.events)
            startup = min(bench.vdir.run("--version") for _ in range(3))
            source = make_calendar(client, server, "import-source")
            fill(client, source, person_events(args.events))
            for n in range(args.rounds):
                import_round(bench, source, n, results["import"])
                export_round(bench, n, results["export"])
    finally:
        server.stop()
    report(args.events, args.rounds, results, startup)


if __name__ == "__main__":
    main()
