"""Every Windows zone Graph can name, read and written by the Microsoft provider.

The truth is CLDR's windowsZones table as Babel ships it (read independently of tzlocal, whose
copy calsync uses): a Windows zone is its territory-001 IANA zone. calsync must read each to a
zone that keeps the same clock, and write every IANA zone as a Windows zone with its clock, or
in UTC when no Windows zone has it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from babel.core import get_global
from harness.microsoft import signed_in

from providers.base import CalendarInfo, SyncWindow
from providers.microsoft.calendar import MicrosoftCalendar
from providers.microsoft.timezones import iana_name, windows_name, zone_info
from sandbox.graph.errors import GraphError
from sandbox.graph.harness import GraphHarness, graph_harness

CLDR: Mapping[str, str] = get_global("windows_zone_mapping")  # Windows zone -> territory 001
# Zones Windows and Exchange still list ("... - Old") that CLDR dropped: what they mean.
RETIRED = {"Kamchatka Standard Time": "Asia/Kamchatka", "Mid-Atlantic Standard Time": "Etc/GMT+2"}
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
# Every six hours for a year: a clock that differs by a season or a transition day shows.
INSTANTS = [NOW + timedelta(hours=6 * n) for n in range(4 * 366)]


def clock(zone: str) -> list[timedelta | None]:
    info = ZoneInfo(zone)
    return [info.utcoffset(instant) for instant in INSTANTS]


def test_cldr_lists_the_windows_zones_graph_names() -> None:
    assert len(CLDR) >= 135  # Babel really ships the table (it has 142 zones in CLDR 47)
    for name in ("Pacific Standard Time", "W. Europe Standard Time", "India Standard Time"):
        assert name in CLDR


@pytest.mark.parametrize("windows", sorted({*CLDR, *RETIRED}))
def test_every_windows_zone_reads_as_a_zone_with_its_clock(windows: str) -> None:
    expected = CLDR.get(windows) or RETIRED[windows]
    iana = iana_name(windows)
    assert iana is not None, f"{windows} maps to nothing"
    assert zone_info(windows) is not None
    if iana != "UTC":
        assert clock(iana) == clock(expected), f"{windows} read as {iana}, not {expected}"
    written = windows_name(iana)
    assert written is not None
    assert clock(iana_name(written) or "UTC") == clock(expected)
    if windows in CLDR:
        assert written == windows  # calsync writes back the very zone it read


def test_every_iana_zone_is_written_as_a_windows_zone_with_its_clock() -> None:
    clocks = {windows: clock(iana) for windows, iana in CLDR.items()}
    wrong, unmapped = [], []
    for iana in sorted(available_timezones() - {"localtime", "Factory"}):
        written = windows_name(iana)
        if written is None:
            unmapped.append(iana)
        elif written != "UTC" and clocks[written] != clock(iana):
            wrong.append(f"{iana} -> {written}")
    assert wrong == []
    # Left in UTC only where no Windows zone keeps the zone's clock.
    assert [z for z in unmapped if clock(z) in clocks.values()] == []
    assert windows_name("Antarctica/Troll") is None  # +00/+02: Windows has no such zone
    assert windows_name("Antarctica/Vostok") not in (None, "Central Asia Standard Time")
    assert windows_name("EST5EDT") == "Eastern Standard Time"
    assert windows_name("Europe/Uzhgorod") == "FLE Standard Time"


def test_custom_and_unknown_zones_read_as_no_zone() -> None:
    for name in ("Customized Time Zone", "tzone://Microsoft/Custom", "Nowhere Standard Time"):
        assert iana_name(name) is None
    assert iana_name("tzone://Microsoft/Utc") == "UTC"
    assert windows_name("Mars/Olympus_Mons") is None


# -- through the Graph sandbox -----------------------------------------------------------------


@pytest.fixture
def graph() -> Iterator[GraphHarness]:
    with graph_harness() as harness:
        yield harness


@pytest.fixture
def calendar(graph: GraphHarness) -> Iterator[MicrosoftCalendar]:
    account = signed_in(graph)
    primary = next(c for c in account.list_calendars() if c.primary)
    window = SyncWindow(NOW, NOW + timedelta(days=30))
    yield account.calendar(CalendarInfo(primary.remote_id, primary=True), window)
    account.close()


def test_events_someone_made_in_each_windows_zone_read_with_its_clock(
    graph: GraphHarness, calendar: MicrosoftCalendar
) -> None:
    day = (NOW + timedelta(days=3)).date()
    made: dict[str, str] = {}
    for windows in sorted(CLDR):
        when = {"dateTime": f"{day}T10:00:00", "timeZone": windows}
        body = {"subject": windows, "start": when, "end": {**when, "dateTime": f"{day}T11:00:00"}}
        try:
            instance, _ = graph.state.create_event(graph.user.id, body, check_access=False)
        except GraphError:
            continue  # the sandbox does not know every zone; the mapping tests above cover it
        made[instance.id] = windows
    assert len(made) >= 120

    listed = {item.id: item.event for item in calendar.list_changes(None).changes}
    assert set(listed) == set(made)
    for event_id, windows in made.items():
        event = listed[event_id]
        assert event is not None and event.time_zone is not None, windows
        assert clock(event.time_zone) == clock(CLDR[windows]), windows
