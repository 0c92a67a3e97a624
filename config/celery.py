"""Celery configuration built from Settings.

Tasks are acknowledged after they ran and put back when their worker dies, so a killed worker
loses no task (every task is idempotent, since it may run again); docs/operations.md explains
each setting.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from config.beat import beat_schedule
from config.settings import Settings, SettingsError

QUEUES = ("ingest", "sync", "reconcile", "maintenance")

# Task modules route to queues by name, so a new task lands on the right workers without edits here.
TASK_ROUTES = {
    "tasks.ingest.*": {"queue": "ingest"},
    "tasks.calendar_sync.*": {"queue": "sync"},
    "tasks.reconcile.*": {"queue": "reconcile"},
    "tasks.maintenance.*": {"queue": "maintenance"},
    "tasks.health.*": {"queue": "maintenance"},
    "tasks.connections.*": {"queue": "sync"},
    "tasks.mail.*": {"queue": "maintenance"},
}


def broker_url(settings: Settings) -> str:
    if not settings.broker_url:
        raise SettingsError(
            "invalid setting CALSYNC_BROKER_URL: required (or use `calsync up`, which embeds Redis)"
        )
    return settings.broker_url


def beat_scheduler(settings: Settings) -> dict[str, Any]:
    """RedBeat keeps the schedule in Redis behind a leader lock, so a standby beat never fires
    twice; without Redis, the file scheduler (then run exactly one beat)."""
    try:
        redis_url = settings.coordination_redis_url()
    except SettingsError:
        return {"beat_schedule_filename": str(settings.data_dir / "celerybeat-schedule")}
    return {
        "beat_scheduler": "redbeat.RedBeatScheduler",
        "redbeat_redis_url": redis_url,
        "redbeat_key_prefix": f"{settings.broker_key_prefix}redbeat",
        # None of the broker's transport options is the Redis client's; said explicitly, as
        # RedBeat warns at every start when it would fall back to them.
        "redbeat_redis_options": {},
        # A standby takes over within lock_timeout once the leader is gone.
        "beat_max_loop_interval": 15,
        "redbeat_lock_timeout": 60,
    }


def on_rabbitmq(url: str) -> bool:
    return url.startswith(("amqp", "pyamqp"))


def redis_transport(settings: Settings) -> dict[str, Any]:
    transport: dict[str, Any] = {
        # Above task_time_limit and every countdown: otherwise Redis redelivers tasks that are
        # still waiting or running, and they run twice.
        "visibility_timeout": settings.broker_visibility_timeout,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        "health_check_interval": 25,
        "max_retries": 3,
    }
    if settings.broker_key_prefix:
        transport["global_keyprefix"] = settings.broker_key_prefix
    return transport


def broker_names(settings: Settings, url: str) -> dict[str, Any]:
    """Queues and exchanges. On RabbitMQ `broker_key_prefix` goes in front of their names (Redis
    prefixes its keys instead), so deployments or test runs can share one virtual host; each
    queue keeps its plain name as an alias, for routes and `worker -Q`."""
    prefix = settings.broker_key_prefix if on_rabbitmq(url) else ""
    exchange = Exchange(f"{prefix}calsync", type="direct")
    queues = [Queue(f"{prefix}{name}", exchange, routing_key=name, alias=name) for name in QUEUES]
    return {
        "task_queues": queues,
        "task_default_queue": "sync",
        "task_default_exchange": exchange.name,
        "task_default_routing_key": "sync",
        "control_exchange": f"{prefix}celery",
        "event_exchange": f"{prefix}celeryev",
    }


def broker_transport(settings: Settings, url: str) -> dict[str, Any]:
    if url.startswith(("redis", "rediss")):
        return redis_transport(settings)
    if on_rabbitmq(url):
        # Publisher confirms: a send returns once RabbitMQ holds the message, so the inbox never
        # counts as sent a message that a dropping connection lost.
        return {"confirm_publish": True}
    return {}


def celery_config(settings: Settings) -> dict[str, Any]:
    url = broker_url(settings)
    transport = broker_transport(settings, url)
    backend = settings.result_backend_url or (url if url.startswith("redis") else None)
    return {
        "broker_url": url,
        "result_backend": backend,
        "result_expires": 24 * 3600,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "visibility_timeout": settings.broker_visibility_timeout,
        "broker_pool_acquire_timeout": 5,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        **broker_names(settings, url),
        "task_routes": TASK_ROUTES,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": max(settings.task_time_limit - 60, settings.task_time_limit // 2),
        "worker_eta_task_limit": 1000,
        "worker_soft_shutdown_timeout": 30,
        "worker_enable_soft_shutdown_on_idle": True,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        **beat_scheduler(settings),
        "beat_schedule": beat_schedule(settings),
        # Lets `celery inspect ping -d celerybeat@host` prove beat is alive.
        "beat_enable_remote_control": True,
    }
