"""The workers' calls to calendar systems, read from Redis at scrape time (`config/metrics.py`
holds the layout): a counter by system, operation and status, and a latency histogram by
system and operation."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator

import redis
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from config import Settings, SettingsError
from config.metrics import BUCKETS, CALLS_KEY, SECONDS_KEY, SUM_FIELD, labels_of

log = logging.getLogger(__name__)

Pair = tuple[str, str]  # (provider, operation)


class ProviderCallsCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: redis.Redis | None = None

    def collect(self) -> Iterator[Metric]:
        stored = self._read()
        if stored is None:
            return
        calls, seconds = stored
        counter = CounterMetricFamily(
            "calsync_provider_calls", "Calls to calendar systems by operation and status",
            labels=["provider", "operation", "status"],
        )  # fmt: skip
        for name, value in calls.items():
            if (labels := labels_of(name, 3)) is not None:
                counter.add_metric(list(labels), float(value))
        yield counter
        histogram = HistogramMetricFamily(
            "calsync_provider_call_seconds", "How long calls to calendar systems took",
            labels=["provider", "operation"],
        )  # fmt: skip
        for (provider, operation), (buckets, total) in _histograms(seconds).items():
            histogram.add_metric([provider, operation], buckets, total)
        yield histogram

    def _read(self) -> tuple[dict[bytes, bytes], dict[bytes, bytes]] | None:
        prefix = self.settings.broker_key_prefix
        try:
            pipe = self._redis().pipeline(transaction=False)
            pipe.hgetall(prefix + CALLS_KEY)
            pipe.hgetall(prefix + SECONDS_KEY)
            calls, seconds = pipe.execute()
        except SettingsError:
            return None  # no Redis configured: the workers keep no tallies either
        except (redis.RedisError, OSError) as error:
            log.warning("provider call metrics unreadable: %s", error)
            return None
        return calls, seconds

    def _redis(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(self.settings.coordination_redis_url(),
                                                socket_timeout=2, socket_connect_timeout=2)
        return self._client


def _histograms(stored: dict[bytes, bytes]) -> dict[Pair, tuple[list[tuple[str, float]], float]]:
    """Cumulative buckets and the sum per (provider, operation), from the stored fields."""
    counts: dict[Pair, list[float]] = defaultdict(lambda: [0.0] * (len(BUCKETS) + 1))
    sums: dict[Pair, float] = defaultdict(float)
    for name, value in stored.items():
        labels = labels_of(name, 3)
        if labels is None:
            continue
        provider, operation, bucket = labels
        if bucket == SUM_FIELD:
            sums[provider, operation] = float(value)
        elif bucket.isdigit() and int(bucket) <= len(BUCKETS):
            counts[provider, operation][int(bucket)] += float(value)
    shaped = {}
    for pair, per_bucket in counts.items():
        running, cumulative = 0.0, []
        for bound, count in zip([*map(str, BUCKETS), "+Inf"], per_bucket, strict=True):
            running += count
            cumulative.append((bound, running))
        shaped[pair] = (cumulative, sums[pair])
    return shaped
