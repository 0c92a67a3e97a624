"""A timed event in UTC is the same event whether its zone is unnamed or named UTC: providers
that name it on the way back (Google, Graph) must not make every full run rewrite the copy."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sync_builders import EXTERNAL, WIX, event, kinds, pair, run

from sync.event import Recurrence, same_content


@pytest.mark.parametrize("named", ["UTC", "Etc/UTC", "GMT"])
def test_an_unnamed_utc_zone_is_the_named_one(named: str) -> None:
    plain = event(time_zone=None)
    assert same_content(plain, replace(plain, time_zone=named))
    assert not same_content(plain, replace(plain, time_zone="Europe/Berlin"))


def test_a_full_run_does_not_rewrite_a_series_read_back_with_utc_named() -> None:
    series = event("Pilates", time_zone=None, recurrence=Recurrence(rule="FREQ=DAILY;COUNT=4"))
    link, wix, external = pair(WIX, series)
    assert external.event is not None
    read_back = replace(external, event=replace(external.event, time_zone="UTC"), version="v2")

    for complete in (True, False):
        result = run([wix], [read_back], [link], complete=complete)
        assert kinds(result) == [("SaveLink", None, "ECHO")]  # the new version, no write


def test_naming_a_real_zone_is_still_an_edit() -> None:
    link, wix, external = pair(EXTERNAL, event(time_zone=None))
    assert external.event is not None
    moved = replace(external, event=replace(external.event, time_zone="Europe/Berlin"),
                    version="v2")  # fmt: skip

    assert kinds(run([wix], [moved], [link], complete=True)) == [
        ("Update", "wix", "UPDATED_EXTERNALLY")
    ]
