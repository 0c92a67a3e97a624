"""Guard: outside providers/ (and models/, which names the built-in ids), no code branches on a
calendar system. A new system is one package and one registry entry; tasks/, api/ and workers/
ask `providers.registry` what a system can do instead of testing which one it is."""

from __future__ import annotations

import ast
from pathlib import Path

from providers.registry import BUILT_IN

ROOT = Path(__file__).parents[2]
GUARDED = ("tasks", "api", "workers", "sync", "config")
SYSTEM_IDS = {entry.id for entry in BUILT_IN}


def branches(source: str) -> list[tuple[int, str]]:
    """`Provider.GOOGLE` and the like, and comparisons with a system's id written out."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "Provider"):  # fmt: skip
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_names_a_system(operand) for operand in operands):
                found.append((node.lineno, ast.unparse(node)))
    return found


def _names_a_system(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in SYSTEM_IDS
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_names_a_system(element) for element in node.elts)
    return False


def test_the_guard_sees_a_branch() -> None:
    assert branches("if connection.provider is Provider.MICROSOFT: pass")
    assert branches('if system == "google": pass')
    assert branches('ok = connection.provider in ("caldav", "apple")')
    assert not branches("entry = registry.entry(connection.provider)")
    assert not branches('quota = "local"')  # a name, not a test


def test_tasks_api_and_workers_ask_the_registry() -> None:
    files = sorted(p for folder in GUARDED for p in (ROOT / folder).rglob("*.py"))
    assert len(files) > 40
    found = [f"{path.relative_to(ROOT)}:{line}: {text}"
             for path in files for line, text in branches(path.read_text())]  # fmt: skip
    assert found == [], "ask providers.registry instead:\n" + "\n".join(found)
