"""Real PostgreSQL, Redis and RabbitMQ for the tests: the ones on 127.0.0.1 when they answer, else
private throwaway instances started here. Tests never skip for want of a service."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import kombu
import psycopg2
import redis

from sandbox.server import free_port
from workers.embedded import redis_executable

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379"
LOCAL_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672"


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


def rabbitmq_answers(url: str) -> bool:
    def probe() -> None:
        with kombu.Connection(url, connect_timeout=1) as connection:
            connection.connect()

    return _answers(probe)


def postgres(force_private: bool = False) -> Service:
    if not force_private and postgres_answers(LOCAL_POSTGRES):
        return Service(LOCAL_POSTGRES, lambda: None, private=False)
    return start_private_postgres()


def redis_service(force_private: bool = False) -> Service:
    if not force_private and redis_answers(LOCAL_REDIS):
        return Service(LOCAL_REDIS, lambda: None, private=False)
    return start_private_redis()


def rabbitmq(force_private: bool = False) -> Service:
    if not force_private and rabbitmq_answers(LOCAL_RABBITMQ):
        return Service(LOCAL_RABBITMQ, lambda: None, private=False)
    return start_private_rabbitmq()


def _installed(name: str, package: str, *candidates: str | None) -> str:
    found = next(filter(None, candidates), None)
    if not found:
        raise RuntimeError(f"{name} is not installed (apt-get install {package})")
    return found


def _postgres_bin(name: str) -> str:
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return _installed(name, "postgresql", shutil.which(name), *versions)


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


def _rabbitmq_bin(name: str) -> str:
    # Debian's scripts on PATH are wrappers that switch user by themselves: the real ones first.
    real = glob.glob(f"/usr/lib/rabbitmq/bin/{name}")
    return _installed(name, "rabbitmq-server", *real, shutil.which(name))


def _as_rabbitmq_user() -> list[str]:
    # As root, run as the rabbitmq user: its Erlang cookie is the one the machine's node has.
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "rabbitmq", "--"]


def _private_node(port: int) -> str:
    return f"calsync-test-{port}@localhost"


def rabbitmqctl(url: str, *args: str) -> str:
    """rabbitmqctl against the server of `url`: a private node is named after its port, the one
    on 5672 is the machine's own (the command's default node)."""
    port = urlsplit(url).port or 5672
    node = [] if port == 5672 else ["-n", _private_node(port)]
    done = subprocess.run(
        [*_as_rabbitmq_user(), _rabbitmq_bin("rabbitmqctl"), "-q", *node, *args],
        capture_output=True, text=True, cwd=tempfile.gettempdir(), timeout=60,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _free_port_but(taken: int) -> int:
    while (port := free_port()) == taken:
        pass
    return port


def start_private_rabbitmq(port: int = 0) -> Service:
    """A throwaway rabbitmq-server: its own node, ports and folder, no plugins (so no management
    listener); `port` to bring one back where a stopped one was."""
    port = port or free_port()
    root = Path(tempfile.mkdtemp(prefix="calsync-rabbitmq-"))
    # The machine's rabbitmq.conf and rabbitmq-env.conf describe its own node: ours has none.
    (root / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{port}\n")
    (root / "rabbitmq-env.conf").touch()
    (root / "enabled_plugins").write_text("[].\n")
    if os.geteuid() == 0:
        user = pwd.getpwnam("rabbitmq")
        os.chown(root, user.pw_uid, user.pw_gid)
    env = {
        **os.environ,
        "RABBITMQ_NODENAME": _private_node(port),
        "RABBITMQ_DIST_PORT": str(_free_port_but(port)),
        "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
        "RABBITMQ_LOG_BASE": str(root / "log"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }
    console = root / "console.log"
    with console.open("wb") as output:
        process = subprocess.Popen(
            [*_as_rabbitmq_user(), _rabbitmq_bin("rabbitmq-server")], env=env, cwd=root,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def stop() -> None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(root, ignore_errors=True)

    url = f"amqp://guest:guest@127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not rabbitmq_answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            log = console.read_text(errors="replace")[-2000:]
            stop()
            raise RuntimeError(f"private rabbitmq-server did not start:\n{log}")
        time.sleep(0.1)
    return Service(url, stop, private=True)


def create_vhost(server_url: str, name: str) -> str:
    """A virtual host the guest user may use entirely; answers its broker URL."""
    rabbitmqctl(server_url, "add_vhost", name)
    rabbitmqctl(server_url, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return f"{server_url}/{name}"


def delete_vhost(server_url: str, name: str) -> None:
    rabbitmqctl(server_url, "delete_vhost", name)


def queued_messages(broker_url: str) -> dict[str, int]:
    """Per queue of the URL's virtual host, the messages RabbitMQ holds: ready ones, and those
    delivered to a consumer but not acknowledged yet. Read from the queues themselves."""
    vhost = unquote(urlsplit(broker_url).path[1:]) or "/"
    listing = rabbitmqctl(broker_url, "list_queues", "-p", vhost, "name", "messages_ready",
                          "messages_unacknowledged", "--formatter", "json")  # fmt: skip
    return {queue["name"]: queue["messages_ready"] + queue["messages_unacknowledged"]
            for queue in json.loads(listing)}  # fmt: skip


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


def restart_postgres(service: Service) -> None:
    """Restart a private PostgreSQL in place, as an operator's restart does: a fast shutdown
    (clients are cut off, open transactions roll back), then the same data directory and port."""
    connection = psycopg2.connect(service.url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            (data,) = cursor.fetchone() or ("",)
    finally:
        connection.close()
    log = Path(data).parent / "log"  # start_private_postgres's server log, next to its data
    subprocess.run(
        [*_as_postgres_user(), _postgres_bin("pg_ctl"), "-D", data, "-l", str(log), "-w",
         "-m", "fast", "restart"],
        check=True, capture_output=True,
    )  # fmt: skip


class DurableRedis:
    """A throwaway redis-server set up as deploy/docker-compose.yml sets up the broker: an
    append-only file, `noeviction`. `restart()` (a clean shutdown, which flushes the file, then
    a new server on the same port and folder) brings back every queued message and lock."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="calsync-redis-aof-")
        self.url = f"redis://127.0.0.1:{self.port}"
        self._process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [redis_executable(), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
             "--dir", self.folder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not redis_answers(self.url):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("private redis-server did not start")
            time.sleep(0.05)
        return process

    def _shut_down(self) -> None:
        self._process.terminate()  # SIGTERM: redis-server flushes its append-only file and exits
        self._process.wait(10)

    def restart(self, down_for: float = 0.0) -> None:
        self._shut_down()
        time.sleep(down_for)
        self._process = self._start()

    def stop(self) -> None:
        self._shut_down()
        shutil.rmtree(self.folder, ignore_errors=True)
