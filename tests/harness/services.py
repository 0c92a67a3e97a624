"""Real PostgreSQL and Redis for the tests: the ones on 127.0.0.1 when they answer, else private
throwaway instances started here. Tests never skip for want of a service."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import redis

from workers.embedded import free_port, redis_executable

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379"


@dataclass
class Service:
    url: str  # for PostgreSQL: the maintenance database of the server
    stop: Callable[[], None]
    private: bool


def _answers(probe: Callable[[], object]) -> bool:
    try:
        probe()
    except Exception:
        return False
    return True


def postgres_answers(url: str) -> bool:
    return _answers(lambda: psycopg2.connect(url, connect_timeout=2).close())


def redis_answers(url: str) -> bool:
    return _answers(lambda: redis.Redis.from_url(url, socket_connect_timeout=1).ping())


def postgres(force_private: bool = False) -> Service:
    if not force_private and postgres_answers(LOCAL_POSTGRES):
        return Service(LOCAL_POSTGRES, lambda: None, private=False)
    return start_private_postgres()


def redis_service(force_private: bool = False) -> Service:
    if not force_private and redis_answers(LOCAL_REDIS):
        return Service(LOCAL_REDIS, lambda: None, private=False)
    return start_private_redis()


def _postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found


def _as_postgres_user() -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def start_private_postgres() -> Service:
    root = Path(tempfile.mkdtemp(prefix="calsync-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = root / "data", free_port()
    prefix = _as_postgres_user()
    subprocess.run(
        [*prefix, _postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
         "-E", "UTF8"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*prefix, _postgres_bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
         f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
        check=True, capture_output=True,
    )  # fmt: skip

    def stop() -> None:
        pg_ctl = _postgres_bin("pg_ctl")
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)

    return Service(f"postgresql://postgres@127.0.0.1:{port}/postgres", stop, private=True)


def start_private_redis(port: int = 0) -> Service:
    """A throwaway redis-server; `port` to bring one back where a stopped one was."""
    port = port or free_port()
    folder = tempfile.mkdtemp(prefix="calsync-redis-")
    process = subprocess.Popen(
        [redis_executable(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", folder],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("private redis-server did not start")
        time.sleep(0.05)

    def stop() -> None:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)

    return Service(url, stop, private=True)


def _admin(server_url: str, statement: str) -> None:
    connection = psycopg2.connect(server_url)
    connection.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


def create_database(server_url: str, name: str) -> str:
    _admin(server_url, f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server_url: str, name: str) -> None:
    _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0
