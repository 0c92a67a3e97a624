"""The `calsync` command: run the service (whole or one process), manage the database and keys."""

from __future__ import annotations

import logging
import sys
import uuid
import warnings
from typing import Any, NoReturn

import click
from sqlalchemy.exc import OperationalError

from config import SettingsError, get_settings
from config.logging import configure_logging
from models.crypto import EncryptionKeyError, new_key

QUEUES = "ingest,sync,reconcile,maintenance"


def fail(message: str) -> NoReturn:
    click.echo(f"calsync: {message}", err=True)
    sys.exit(2)


@click.group()
def cli() -> None:
    """calsync keeps Wix Bookings and external calendars in two-way sync."""


@cli.command()
@click.option("--no-demo", is_flag=True, help="Without a Wix app configured, start no demo world")
def up(no_demo: bool) -> None:
    """Run API, worker, beat and Flower (and, if unset, SQLite and Redis) on this machine; with
    no Wix app configured, also a local demo world connected to it."""
    from workers import up as whole

    settings = get_settings()
    whole.run(settings, demo=not no_demo and not settings.wix_app_id)


@cli.command()
def demo() -> None:
    """Run the demo world (Wix, Google, Outlook and CalDAV on loopback) for `calsync up`."""
    from workers.demo.run import run

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    run(settings)


@cli.command()
def api() -> None:
    """Run the HTTP API (`CALSYNC_API_WORKERS` processes on one port)."""
    import uvicorn

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run("workers.cli:api_app", factory=True, host=settings.api_host,
                port=settings.api_port, workers=settings.api_workers, log_config=None,
                access_log=False)  # fmt: skip


def api_app() -> Any:
    """The API as each of its processes builds it: settings from the environment, and the
    Celery app it enqueues through."""
    from api.app import create_app
    from workers.celery_app import create_celery

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    create_celery(settings)
    return create_app(settings)


@cli.command()
@click.option("--queues", "-Q", default=QUEUES, show_default=True)
@click.option("--concurrency", "-c", type=int, default=None, help="Default: worker_concurrency")
@click.option("--name", "-n", default="worker@%h", show_default=True)
def worker(queues: str, concurrency: int | None, name: str) -> None:
    """Run a Celery worker."""
    from workers.celery_app import create_celery

    settings = get_settings()
    app = create_celery(settings)
    # Celery warns root of code run by pickled messages; calsync takes JSON only and its image
    # runs as an unprivileged user: in a root dev container the warning asks for nothing.
    warnings.filterwarnings("ignore", "You're running the worker with superuser privileges")
    # Mingle (a second's wait for neighbours at every start) and gossip only serve task
    # revocation and leader election, which calsync does not use; -E keeps Flower's events.
    # --quiet: no banner, which is no log record (the settings are in the logs and Flower).
    app.worker_main([
        "--quiet", "worker", "--loglevel", settings.log_level, "-Q", queues, "-n", name, "-E",
        "-c", str(concurrency or settings.worker_concurrency), "--without-mingle",
        "--without-gossip",
    ])  # fmt: skip


@cli.command()
def beat() -> None:
    """Run Celery beat. Exactly one may run."""
    from workers.celery_app import create_celery

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    create_celery(settings).start(["--quiet", "beat", "--loglevel", settings.log_level])


@cli.command()
def flower() -> None:
    """Run Flower behind basic auth."""
    from workers.celery_app import create_celery

    settings = get_settings()
    if settings.flower_basic_auth is None:
        fail("invalid setting CALSYNC_FLOWER_BASIC_AUTH: required (user:password)")
    # Before Tornado's own colour handler, which it installs only on a bare root logger.
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("flower.inspector").addFilter(_no_worker_answered)
    import os

    # Flower reads its login from the environment, which keeps it out of `ps` output.
    os.environ["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth.get_secret_value()
    create_celery(settings).start([
        "flower", f"--address={settings.flower_host}",
        f"--port={settings.flower_port}", "--purge_offline_workers=60",
    ])  # fmt: skip


def _no_worker_answered(record: logging.LogRecord) -> bool:
    """Flower asks the workers for their state when it starts, before a worker started with it
    can answer, and again for each page; which workers answer is what its page shows."""
    return record.msg != "Inspect method %s failed" or logging.getLogger().level <= logging.DEBUG


@cli.command()
@click.option("--timeout", default=10.0, show_default=True)
def check(timeout: float) -> None:
    """Send a task through the broker and wait for a worker to answer it."""
    from tasks.health import ping
    from workers.celery_app import create_celery

    create_celery(get_settings())
    token = uuid.uuid4().hex
    reply = ping.apply_async(args=[token]).get(timeout=timeout)
    if reply.get("token") != token:
        fail("worker answered with the wrong token")
    click.echo(f"worker {reply['host']} answered")


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    from models.migrate import upgrade

    upgrade(get_settings().resolved_database_url(), revision)


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    from models.migrate import downgrade

    downgrade(get_settings().resolved_database_url(), revision)


@db.command("current")
def db_current() -> None:
    from models.migrate import current_revision

    click.echo(current_revision(get_settings().resolved_database_url()) or "empty")


@cli.group()
def deadletters() -> None:
    """Changes that kept failing and were parked."""


@deadletters.command("list")
@click.option("--all", "everything", is_flag=True, help="Also those still being retried")
def deadletters_list(everything: bool) -> None:
    from models import DeadLetterStatus
    from tasks.context import worker_context
    from tasks.dead_letters import list_letters

    status = None if everything else DeadLetterStatus.PARKED
    letters = list_letters(worker_context(), status)
    for letter in letters:
        click.echo(f"{letter.id}  {letter.status.value:8}  {letter.attempts}x  "
                   f"calendar {letter.calendar_id}  {letter.action.get('kind', '?')}  "
                   f"{letter.error}")  # fmt: skip
    click.echo(f"{len(letters)} dead letter(s)")


@deadletters.command("retry")
@click.argument("letter_id")
def deadletters_retry(letter_id: str) -> None:
    from tasks.context import worker_context
    from tasks.dead_letters import retry_letter
    from workers.celery_app import create_celery

    create_celery(get_settings())
    if retry_letter(worker_context(), letter_id) is None:
        fail(f"no dead letter {letter_id}")
    click.echo(f"released {letter_id}; a sync of its calendar is on its way")


@cli.group()
def tenants() -> None:
    """Tenants (Wix app instances) and their API keys."""


@tenants.command("create")
@click.option("--instance-id", required=True, help="The Wix app instance id of the site")
@click.option("--name", default=None, help="A name to recognise the tenant by")
def tenants_create(instance_id: str, name: str | None) -> None:
    """Create a tenant and print its API key (shown this once; only its hash is kept)."""
    from api.auth import TenantExists, create_tenant
    from models.db import session_scope

    try:
        with session_scope() as db:
            tenant, key = create_tenant(db, instance_id, name)
            tenant_id = tenant.id
    except TenantExists as error:
        fail(str(error))
    click.echo(f"tenant {tenant_id} created; its API key (store it now, it is not shown again):")
    click.echo(key)


@tenants.command("rotate-key")
@click.option("--instance-id", required=True)
def tenants_rotate_key(instance_id: str) -> None:
    """Give the tenant a new API key; the old one stops working at once."""
    from api.auth import rotate_key
    from models.db import session_scope

    with session_scope() as db:
        key = rotate_key(db, instance_id)
    if key is None:
        fail(f"no tenant for instance {instance_id}")
    click.echo(key)


@cli.group()
def keys() -> None:
    """Encryption keys for secrets at rest."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new key. Put it first in CALSYNC_ENCRYPTION_KEYS, keep the old ones after it."""
    click.echo(new_key())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret under the first key, so old keys can be retired."""
    from models.rotation import rotate_secrets

    count = rotate_secrets()
    click.echo(f"re-encrypted {count} values")


def main() -> None:
    try:
        cli(standalone_mode=True)
    except SettingsError as error:
        fail(str(error))
    except EncryptionKeyError as error:
        fail(str(error))
    except OperationalError as error:
        fail(f"cannot reach the database: {str(error.orig).strip().splitlines()[0]}")
