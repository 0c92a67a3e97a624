"""The tests reach nothing but loopback: the guard refuses other addresses in this process and in
the processes the tests start, and the test settings name no host on the internet."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from harness.loopback_only.loopback_guard import LOG_VARIABLE, loopback

from config import Settings

BEYOND = ("192.0.2.1", 443)  # TEST-NET-1: refused before any packet could leave


@pytest.fixture
def refused_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own record of refusals, so the suite-wide check does not fail it."""
    log = tmp_path / "refused.log"
    monkeypatch.setenv(LOG_VARIABLE, str(log))
    return log


def test_this_process_reaches_loopback_and_nothing_else(refused_log: Path) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(BEYOND, timeout=1)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("dav.example.com", 443)
    with pytest.raises(httpx.ConnectError):
        httpx.get("https://caldav.icloud.com/", timeout=1)
    refused = refused_log.read_text().splitlines()
    assert len(refused) == 3 and "caldav.icloud.com" in refused[2]
    with socket.create_server(("127.0.0.1", 0)) as server:
        socket.create_connection(server.getsockname(), timeout=1).close()


def test_processes_the_tests_start_are_guarded_too(refused_log: Path) -> None:
    reach = f"import socket; socket.create_connection({BEYOND!r}, timeout=1)"
    run = subprocess.run([sys.executable, "-c", reach], env=dict(os.environ),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode != 0 and "NotLoopback" in run.stderr
    assert "192.0.2.1:443" in refused_log.read_text()


def test_the_guard_knows_loopback() -> None:
    assert all(map(loopback, ["127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost", None]))
    assert not any(map(loopback, ["10.0.0.1", "169.254.169.254", "example.com", "::ffff:8.8.8.8"]))


def test_the_test_settings_name_no_host_beyond_loopback(settings: Settings) -> None:
    hosts = {name: urlsplit(str(value)).hostname for name, value in settings.model_dump().items()
             if "://" in str(value)}  # fmt: skip
    assert "apple_caldav_url" in hosts and "google_api_base_url" in hosts
    assert {name: host for name, host in hosts.items() if not loopback(host)} == {}
