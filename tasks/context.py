"""What a worker process builds once and every task reuses: database, Redis, HTTP, gates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import httpx
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config import Settings, get_settings
from models.db import engine_for
from tasks.coordination import CalendarGate
from tasks.throttle import AccountThrottle


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    sessions: Callable[[], Session]
    redis: redis.Redis
    gate: CalendarGate
    throttle: AccountThrottle
    http: httpx.Client


def build_context(settings: Settings) -> WorkerContext:
    engine = engine_for(settings.resolved_database_url())
    client = redis.Redis.from_url(settings.coordination_redis_url())
    prefix = settings.broker_key_prefix
    return WorkerContext(
        settings=settings,
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        redis=client,
        gate=CalendarGate(client, prefix, settings.calendar_lock_seconds),
        throttle=AccountThrottle(client, prefix),
        http=httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)),
    )


@lru_cache(maxsize=1)
def worker_context() -> WorkerContext:
    return build_context(get_settings())
