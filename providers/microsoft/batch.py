"""A write as the Graph calls it makes, run alone or side by side with others in `$batch`
requests.

An `Exchange` is a generator: each `yield` sends one call and resumes with its JSON answer, or
with its error thrown in; what it returns is the write's result. So one piece of code says
how a create, an update or a delete talks to Graph, whether it goes out alone (`run_alone`,
one HTTP request a call) or together with others (`run_batched`, one `$batch` request for the
next call of up to 20 writes at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from providers.errors import ProviderError, RateLimited
from providers.microsoft.http import BatchAnswer, GraphCall, GraphClient

T = TypeVar("T")
Exchange = Generator[GraphCall, dict[str, Any], T]
BATCH_SIZE = 20  # Graph's limit of requests in one `$batch`


@dataclass(frozen=True)
class _Done(Generic[T]):
    outcome: T | ProviderError


def run_alone(client: GraphClient, exchange: Exchange[T]) -> T:
    """The exchange with one request a call: its result, or its error raised."""
    step = _step(exchange, None)
    while isinstance(step, GraphCall):
        step = _step(exchange, _answer(client, step))
    if isinstance(step.outcome, ProviderError):
        raise step.outcome
    return step.outcome


def run_batched(client: GraphClient, exchanges: Sequence[Exchange[T]]) -> list[T | ProviderError]:
    """Each exchange's result or error, in order. An error of a batch request is raised while
    no exchange has a result; after that it is the error of each exchange still waiting, so
    no result is lost. Once a write is throttled nothing more is sent (the caller stops its
    run on it): each exchange still waiting is throttled too."""
    steps = [_step(exchange, None) for exchange in exchanges]
    while waiting := {i: step for i, step in enumerate(steps) if isinstance(step, GraphCall)}:
        throttled = _throttling(steps)
        if throttled is not None:
            return _settled(steps, throttled)
        sent = list(waiting.items())[:BATCH_SIZE]
        try:
            answers = client.batch([call for _, call in sent])
        except ProviderError as error:
            if len(waiting) == len(steps):
                raise
            return _settled(steps, error)
        for (i, _), answer in zip(sent, answers, strict=True):
            steps[i] = _step(exchanges[i], answer)
    return _settled(steps, None)


def made_alone(write: Callable[[], T]) -> Exchange[T]:
    """A write that makes its own requests, one by one (done in its first step)."""
    yield from ()
    return write()


def _step(exchange: Exchange[T], answer: BatchAnswer | None) -> GraphCall | _Done[T]:
    """The exchange's next call, or how it ended."""
    try:
        if answer is None:
            return next(exchange)
        if isinstance(answer, ProviderError):
            return exchange.throw(answer)
        return exchange.send(answer)
    except StopIteration as done:
        return _Done(done.value)
    except ProviderError as error:
        return _Done(error)


def _answer(client: GraphClient, call: GraphCall) -> BatchAnswer:
    try:
        return client.call(call)
    except ProviderError as error:
        return error


def _throttling(steps: list[GraphCall | _Done[T]]) -> RateLimited | None:
    """The throttling an exchange ended with, if any."""
    for step in steps:
        if isinstance(step, _Done) and isinstance(step.outcome, RateLimited):
            return step.outcome
    return None


def _settled(steps: list[GraphCall | _Done[T]], unsent: ProviderError | None
             ) -> list[T | ProviderError]:  # fmt: skip
    """The outcomes, `unsent` standing for the calls that never went out."""
    outcomes: list[T | ProviderError] = []
    for step in steps:
        if isinstance(step, _Done):
            outcomes.append(step.outcome)
        else:
            assert unsent is not None
            outcomes.append(unsent)
    return outcomes
