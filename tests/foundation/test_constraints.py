"""`constraints.txt` pins every package the project asks for, and the suite runs on those pins:
a dependency added without refreshing the file, or an install that ignored it, fails here."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not name==version"
            found[normal(name)] = version.strip()
    return found


def asked_for() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {normal(m.group(0)) for spec in wanted if (m := NAME.match(spec))}


def test_every_package_the_project_asks_for_is_pinned() -> None:
    assert asked_for() - set(pins()) == set()


def test_the_suite_runs_on_the_pinned_versions() -> None:
    installed = {normal(d.metadata["Name"]): d.version for d in metadata.distributions()}
    differ = {n: (v, installed[n]) for n, v in pins().items() if installed.get(n, v) != v}
    assert differ == {}, "installed versions differ from constraints.txt (pinned, installed)"
