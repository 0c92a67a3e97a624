"""sync/ is pure: it imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SYNC = Path(__file__).parents[2] / "sync"
OURS = {"config", "models", "providers", "tasks", "api", "workers", "sandbox", "bench", "tests"}
WITH_IO = {
    "sqlalchemy",
    "celery",
    "kombu",
    "httpx",
    "requests",
    "redis",
    "google",
    "googleapiclient",
}
WITH_IO |= {"O365", "msal", "caldav", "icalendar", "socket", "urllib", "http", "sqlite3", "os"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


MODULES = sorted(SYNC.glob("*.py"))


def test_there_is_something_to_check() -> None:
    assert {p.name for p in MODULES} >= {"planner.py", "event.py", "merge.py", "link.py"}


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_sync_imports_only_the_standard_library_and_itself(module: Path) -> None:
    roots = imported_roots(module) - {"__future__"}
    foreign = {r for r in roots if r != "sync" and r not in sys.stdlib_module_names}
    assert not foreign, f"{module.name} imports {foreign}"
    assert not roots & (OURS | WITH_IO), f"{module.name} imports {roots & (OURS | WITH_IO)}"
