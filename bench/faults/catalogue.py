"""The faults, one per row: what each does to a row's deployment, at the start of the burst (a
share of failures that lasts the whole row) or in its middle (a restart or a kill, while the
burst goes on)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.faults.deployment import Deployment
from sandbox.store import StoreState
from sandbox.store.app import HttpFault
from sandbox.store.push import Pusher
from tests.harness import services
from tests.harness.pipeline import broker_drained
from tests.harness.processes import wait_until

SHARE = 0.2  # of the provider's answers that fail, and of the pushes that are dropped


@dataclass
class Sometimes(HttpFault):
    """An HTTP fault that strikes a share of the requests, at random (seeded)."""

    share: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(18))

    def matches(self, method: str, path: str, body: bytes) -> bool:
        return self.rng.random() < self.share


class LossyPusher(Pusher):
    """The store's pusher, dropping a share of its notifications at random (seeded): the
    pusher drops one whenever `drop_next` says so."""

    share = 0.0
    rng = random.Random(18)

    @property
    def drop_next(self) -> int:
        return int(self.rng.random() < self.share)

    @drop_next.setter
    def drop_next(self, _value: int) -> None:
        pass  # a count left by the pusher: the share decides each one afresh


def nothing(_deployment: Deployment) -> None:
    pass


def restart_redis(deployment: Deployment) -> None:
    deployment.redis.restart(down_for=1.0)


def restart_postgres(deployment: Deployment) -> None:
    services.restart_postgres(deployment.postgres)


def killer(role: str) -> Callable[[Deployment], None]:
    def kill_and_start(deployment: Deployment) -> None:
        deployment.restart(role)

    return kill_and_start


def provider_errors(deployment: Deployment) -> None:
    """503 on a tenth of calsync's requests to either calendar, 429 (Retry-After 1 s) on
    another tenth: a fifth in all."""
    with deployment.store.lock:
        deployment.store.faults += [
            Sometimes(503, times=10**9, share=SHARE / 2),
            Sometimes(429, times=10**9, retry_after=1, share=SHARE / 2 / (1 - SHARE / 2)),
        ]


def pushes_dropped(share: float) -> Callable[[Deployment], None]:
    def drop(deployment: Deployment) -> None:
        pusher = deployment.store.pusher
        assert isinstance(pusher, LossyPusher)
        pusher.share = share

    return drop


def pushes_stopped(deployment: Deployment) -> None:
    """No more pushes, once calsync has done with those sent so far: what comes next can only
    be found by the reconciliation (a late notification would start a run that reads it)."""
    pushes_dropped(1.0)(deployment)
    deployment.store.pusher.wait_idle()
    wait_until(lambda: broker_drained(deployment.context), 60, "calsync to be idle")


def injected(store: StoreState) -> str:
    """What the store's faults did in a row: provider answers failed, pushes dropped."""
    with store.lock:
        failed = sum(1 for *_, status in store.requests if status in {429, 503})
        asked = len(store.requests)
    pusher = store.pusher
    made = sum(channel.messages for channel in pusher.channels.values())
    dropped = made - len(pusher.delivered)
    said = [f"{failed} of {asked} answers failed" if failed else "",
            f"{dropped} of {made} pushes dropped" if dropped else ""]  # fmt: skip
    return ", ".join(filter(None, said))


@dataclass(frozen=True)
class Fault:
    name: str
    what: str  # for the report
    at_start: Callable[[Deployment], None] = nothing
    midway: Callable[[Deployment], None] = nothing
    pauses_burst: bool = False  # the burst waits for `midway` to be done


FAULTS = (
    Fault("baseline", "no fault"),
    Fault("redis-restart", "Redis shut down and started again after 1 s on its append-only file",
          midway=restart_redis),
    Fault("postgres-restart", "PostgreSQL restarted (fast shutdown: connections cut)",
          midway=restart_postgres),
    Fault("worker-kill", "the worker SIGKILLed mid-run, a new one started",
          midway=killer("worker")),
    Fault("api-kill", "the API SIGKILLed, started again", midway=killer("api")),
    Fault("beat-kill", "beat SIGKILLed, started again", midway=killer("beat")),
    Fault("provider-5xx-429", "20 % of the store's answers 503 or 429 (Retry-After 1 s)",
          at_start=provider_errors),
    Fault("pushes-dropped", "20 % of push notifications dropped",
          at_start=pushes_dropped(SHARE)),
    Fault("pushes-stopped", "half-way, pushes stop; once calsync is idle, the burst goes on",
          midway=pushes_stopped, pauses_burst=True),
)  # fmt: skip
