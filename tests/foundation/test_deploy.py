"""The deployment files only run commands the CLI has and set variables Settings knows."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from config import Settings
from config.settings import ENV_PREFIX
from workers.cli import cli

DEPLOY = Path(__file__).parents[2] / "deploy"
SETTINGS_VARIABLES = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def yaml_documents() -> list[Any]:
    files = [DEPLOY / "docker-compose.yml", *sorted((DEPLOY / "k8s").glob("*.yaml"))]
    return [doc for path in files for doc in yaml.safe_load_all(path.read_text()) if doc]


def yaml_commands() -> list[list[str]]:
    commands = []
    for document in yaml_documents():
        for node in walk(document):
            if isinstance(node, dict) and isinstance(node.get("command"), list):
                commands.append([str(part) for part in node["command"]])
    return commands


def procfile_commands() -> list[list[str]]:
    lines = (DEPLOY / "Procfile").read_text().splitlines()
    return [shlex.split(line.split(":", 1)[1]) for line in lines if line.strip()]


def dockerfile_commands() -> list[list[str]]:
    text = (DEPLOY / "Dockerfile").read_text()
    return [yaml.safe_load(match) for match in re.findall(r"^CMD (\[.*\])$", text, re.M)]


def calsync_commands() -> list[list[str]]:
    every = yaml_commands() + procfile_commands() + dockerfile_commands()
    return [command for command in every if command and command[0] == "calsync"]


def resolve(arguments: list[str]) -> click.Command:
    """Follow subcommands the way click would, and parse the remaining options."""
    command: click.Command = cli
    context = click.Context(cli)
    remaining = list(arguments)
    while isinstance(command, click.Group) and remaining and not remaining[0].startswith("-"):
        found = command.get_command(context, remaining.pop(0))
        assert found is not None, f"calsync has no command {' '.join(arguments)!r}"
        command = found
    command.make_context("calsync", remaining, parent=context)
    return command


def test_every_deployment_role_is_present() -> None:
    used = {" ".join(command[1:2]) for command in calsync_commands()}
    assert {"api", "worker", "beat", "flower", "db"} <= used


@pytest.mark.parametrize("command", calsync_commands(), ids=" ".join)
def test_every_command_exists_in_the_cli(command: list[str]) -> None:
    resolve(command[1:])


def test_every_variable_exists_in_settings() -> None:
    names: set[str] = set()
    for document in yaml_documents():
        for node in walk(document):
            if isinstance(node, dict):
                names |= {
                    key for key in node if isinstance(key, str) and key.startswith(ENV_PREFIX)
                }
    names |= set(re.findall(r"\b(CALSYNC_[A-Z_]+)=", (DEPLOY / "Dockerfile").read_text()))
    assert names, "no CALSYNC_ variables found in deploy/"
    assert names - SETTINGS_VARIABLES == set()


def test_beat_runs_exactly_once() -> None:
    beats = [
        doc for doc in yaml_documents()
        if doc.get("kind") == "Deployment" and doc["metadata"]["name"].endswith("-beat")
    ]  # fmt: skip
    assert len(beats) == 1
    assert beats[0]["spec"]["replicas"] == 1
    assert beats[0]["spec"]["strategy"]["type"] == "Recreate"


def test_api_probes_use_health_endpoints() -> None:
    api = next(
        doc for doc in yaml_documents()
        if doc.get("kind") == "Deployment" and doc["metadata"]["name"] == "calsync-api"
    )  # fmt: skip
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_image_installs_the_pinned_versions_on_a_supported_python() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    versions = re.findall(r"^FROM python:3\.(\d+)-slim", text, re.M)
    assert versions and all(int(minor) >= 12 for minor in versions)
    assert re.search(r"^COPY .*\bconstraints\.txt\b", text, re.M)
    assert re.search(r"^RUN pip install .*-c constraints\.txt", text, re.M)
