"""Guard: end-to-end tests, the harness and the benchmarks hold no calendar date written out.

They go through calsync's sync window, which starts a few weeks before now, so a date written
out falls out of it one day and the test fails for no reason of its own. Such code takes its
dates from `tests/harness/clock.py`, counted from the moment it runs.

The folders of engine-level tests (`tests/sync`, `tests/providers`, `tests/sandbox`) may pin
dates: each call they make to the planner, a provider or a sandbox passes a window of its own,
so nothing there depends on today's date. That is the line this guard draws: by folder.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
GUARDED = ["tests/pipeline", "tests/api", "tests/foundation", "tests/harness", "bench"]
# 2026-12-01, 20261201T090000Z, and the HTTP date "Tue, 01 Dec 2026" all name a day.
DAY_IN_TEXT = re.compile(
    r"(?<!\d)(19|20)\d\d-[01]\d-[0-3]\d"  # ISO
    r"|(?<!\d)(19|20)\d\d[01]\d[0-3]\dT\d"  # iCalendar and Google instance ids
    r"|\b\d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (19|20)\d\d\b"  # HTTP
)
DATE_TYPES = {"datetime", "date"}


def pinned_dates(source: str) -> list[tuple[int, str]]:
    """(line, text) of each `datetime(2026, ...)`/`date(...)` with a literal year, and of each
    string constant that spells out a day."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _called_name(node.func) in DATE_TYPES and node.args:
            year = node.args[0]
            if isinstance(year, ast.Constant) and isinstance(year.value, int):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [(node.lineno, node.value[:60])] if DAY_IN_TEXT.search(node.value) else []
    return found


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def guarded_files() -> list[Path]:
    """Every guarded module but this one, whose own examples are dates on purpose."""
    own = Path(__file__).resolve()
    found = (path for folder in GUARDED for path in (ROOT / folder).rglob("*.py"))
    return sorted(path for path in found if path.resolve() != own)


def test_the_guard_sees_every_way_of_writing_a_day() -> None:
    assert pinned_dates("START = datetime(2026, 12, 1, 9, tzinfo=UTC)")
    assert pinned_dates("day = dt.date(2027, 3, 1)")
    assert pinned_dates('body = {"start": "2026-12-01T15:00:00+00:00"}')
    assert pinned_dates('ids = f"{series}_20300311T090000Z"')
    assert pinned_dates('header = "Sat, 21 Nov 2026 12:00:30 GMT"')
    assert not pinned_dates("START = days_ahead(1, 9)")
    assert not pinned_dates('version = "2.1.0"; key = "a-20-30"; when = datetime.now(UTC)')


def test_end_to_end_code_writes_no_date_that_can_age() -> None:
    files = guarded_files()
    assert len(files) > 20  # the folders are where the guard thinks they are
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text}"
                 for path in files for line, text in pinned_dates(path.read_text())]  # fmt: skip
    assert offenders == [], "dates that will age; take them from harness.clock:\n" + "\n".join(
        offenders
    )
