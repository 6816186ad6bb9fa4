"""Which failures are worth retrying: the one place every consumer asks.

Rule (architecture guide): an infrastructure failure — MongoDB, Kafka, Graph 5xx/429 and
timeouts, the identity platform unreachable — is *transient*: the record is retried with a
capped, jittered backoff for as long as it takes and is never dead-lettered. Only a record
that can never succeed (it doesn't parse, it is invalid, the handler has a bug) goes to the
dead-letter topic.
"""

from __future__ import annotations

import random

import httpx
import requests
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteConcernError,
    WTimeoutError,
)

from shared.graph.errors import GraphError


class Retryable(Exception):
    """A transient failure a handler names itself: retried after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


_MONGO_TRANSIENT: tuple[type[BaseException], ...] = (
    AutoReconnect,  # includes NetworkTimeout, NotPrimaryError
    ConnectionFailure,  # includes ServerSelectionTimeoutError
    NetworkTimeout,
    NotPrimaryError,
    ServerSelectionTimeoutError,
    WriteConcernError,
    WTimeoutError,
    ExecutionTimeout,
)
_KAFKA_TRANSIENT: tuple[type[BaseException], ...] = (KafkaConnectionError, KafkaTimeoutError)
_HTTP_TRANSIENT: tuple[type[BaseException], ...] = (
    httpx.TransportError,  # connect/read/write errors and timeouts
    requests.ConnectionError,  # MSAL's HTTP client: identity platform unreachable
    requests.Timeout,
    ConnectionError,  # sockets refused/reset below any client
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """True when the same record may well succeed if tried again later."""
    for candidate in _chain(exc):
        if isinstance(candidate, Retryable):
            return True
        if isinstance(candidate, GraphError):
            return candidate.transient
        if isinstance(candidate, _MONGO_TRANSIENT + _HTTP_TRANSIENT + _KAFKA_TRANSIENT):
            return True
        if isinstance(candidate, KafkaError) and candidate.retriable:
            return True
        if isinstance(candidate, PyMongoError) and candidate.has_error_label("RetryableWriteError"):
            return True
    return False


def retry_after(exc: BaseException) -> float | None:
    """A delay the failure asks for (Graph's Retry-After, a handler's `Retryable`)."""
    for candidate in _chain(exc):
        delay = getattr(candidate, "retry_after", None)
        if isinstance(delay, int | float) and delay > 0:
            return float(delay)
    return None


def backoff(
    attempt: int,
    exc: BaseException | None = None,
    *,
    base: float = 0.5,
    cap: float = 30.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1): exponential,
    capped, with full jitter over its upper half; a `retry_after` the failure carries wins
    (never less than it asked, but capped too)."""
    asked = retry_after(exc) if exc is not None else None
    if asked is not None:
        return min(cap, asked)
    ceiling = min(cap, base * float(2 ** max(0, attempt - 1)))
    jitter: float = (rng or random).random()
    return ceiling / 2 + jitter * ceiling / 2


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised `from` (a wrapper may hide a network error);
    not the implicit context: a bug raised while handling a network error stays a bug."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__
    return seen
