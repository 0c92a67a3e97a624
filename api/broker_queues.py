"""How many messages wait in each of calsync's queues, read from the broker at scrape time.

- Redis: the length of each queue's lists (kombu keeps one per priority step), and the
  `unacked` hash: messages a worker took and has not acknowledged yet (running, or held for
  their countdown).
- RabbitMQ: a passive declare of each queue (one short connection per scrape), which counts the
  ready messages only; those a worker holds are on RabbitMQ's own metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from kombu import Connection
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from config import Settings
from config.celery import QUEUES, on_rabbitmq

log = logging.getLogger(__name__)

# kombu's Redis transport: a queue's list per priority step, named `<queue><SEP><step>` past 0.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
UNACKED = "unacked"

Depths = tuple[dict[str, int], int | None]  # per queue, and the unacknowledged (if known)


class QueueDepthCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: redis.Redis | None = None

    def collect(self) -> Iterator[Metric]:
        url = self.settings.broker_url or ""
        try:
            depths = self._rabbitmq(url) if on_rabbitmq(url) else self._redis(url)
        except Exception as error:  # a broker that cannot answer costs the gauge, not /metrics
            log.warning("queue depths unreadable: %s", error)
            return
        if depths is None:
            return
        waiting, unacked = depths
        family = GaugeMetricFamily("calsync_queue_messages", "Messages waiting in each queue",
                                   labels=["queue"])  # fmt: skip
        for queue, count in waiting.items():
            family.add_metric([queue], count)
        yield family
        if unacked is not None:
            yield GaugeMetricFamily(
                "calsync_queue_unacked_messages",
                "Messages workers took and have not acknowledged (running or counting down)",
                value=unacked,
            )

    def _redis(self, url: str) -> Depths | None:
        if not url.startswith(("redis://", "rediss://")):
            return None
        if self._client is None:
            self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        prefix = self.settings.broker_key_prefix
        pipe = self._client.pipeline(transaction=False)
        for queue in QUEUES:
            for step in PRIORITY_STEPS:
                pipe.llen(f"{prefix}{queue}{PRIORITY_SEPARATOR}{step}" if step else prefix + queue)
        pipe.hlen(prefix + UNACKED)
        *lengths, unacked = pipe.execute()
        per_queue = len(PRIORITY_STEPS)
        waiting = {queue: sum(lengths[i * per_queue:(i + 1) * per_queue])
                   for i, queue in enumerate(QUEUES)}  # fmt: skip
        return waiting, int(unacked)

    def _rabbitmq(self, url: str) -> Depths:
        prefix = self.settings.broker_key_prefix
        waiting: dict[str, int] = {}
        with Connection(url, connect_timeout=2) as connection:
            for queue in QUEUES:
                with connection.channel() as channel:
                    try:
                        declared = channel.queue_declare(queue=prefix + queue, passive=True)
                    except connection.channel_errors:
                        continue  # not declared yet: no worker has started
                waiting[queue] = int(declared.message_count)
        return waiting, None
