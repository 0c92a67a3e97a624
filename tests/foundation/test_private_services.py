"""Where no PostgreSQL or Redis answers on 127.0.0.1, the suite starts its own: prove that works."""

from __future__ import annotations

import redis
from harness import services

from models.migrate import current_revision, head_revision, upgrade


def test_private_postgres_and_redis_start_serve_and_stop() -> None:
    database, broker = services.start_private_postgres(), services.start_private_redis()
    try:
        assert database.private and broker.private
        url = services.create_database(database.url, "calsync_private")
        upgrade(url)
        assert current_revision(url) == head_revision()
        client = redis.Redis.from_url(broker.url)
        client.set("calsync:probe", "1")
        assert client.get("calsync:probe") == b"1"
    finally:
        database.stop()
        broker.stop()
    assert not services.postgres_answers(database.url)
    assert not services.redis_answers(broker.url)
