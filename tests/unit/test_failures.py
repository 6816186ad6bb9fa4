"""Which failures are transient (retried without bound) and which dead-letter."""

from __future__ import annotations

import random

import httpx
import pytest
import requests
from aiokafka.errors import KafkaConnectionError, RequestTimedOutError
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteConcernError,
)

from shared.graph.errors import GraphForbidden, GraphThrottled, GraphUnavailable, error_for
from shared.messaging.failures import Retryable, backoff, is_transient, retry_after


@pytest.mark.parametrize(
    "exc",
    [
        AutoReconnect("x"),
        NetworkTimeout("x"),
        NotPrimaryError("x"),
        ServerSelectionTimeoutError("x"),
        WriteConcernError("x"),
        KafkaConnectionError(),
        RequestTimedOutError(),
        httpx.ConnectError("x"),
        httpx.ReadTimeout("x"),
        requests.ConnectionError("identity platform unreachable"),
        requests.Timeout("x"),
        ConnectionRefusedError(),
        GraphThrottled(429, "TooManyRequests", "slow down", retry_after=7),
        GraphUnavailable(502, "BadGateway", "x"),
        error_for(500, "InternalServerError", "x", None, None),
        Retryable("named by a handler"),
    ],
)
def test_infrastructure_failures_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("a bug"),
        KeyError("a bug"),
        DuplicateKeyError("dup"),
        OperationFailure("bad query"),
        GraphForbidden(403, "ErrorAccessDenied", "x"),
        error_for(400, "ErrorInvalidRequest", "x", None, None),
        FileNotFoundError("a bug too"),
    ],
)
def test_what_can_never_succeed_is_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_a_wrapped_network_error_is_transient_but_a_bug_raised_while_handling_one_is_not() -> None:
    try:
        try:
            raise requests.ConnectionError("down")
        except requests.ConnectionError as inner:
            raise RuntimeError("token fetch failed") from inner
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    try:
        try:
            raise AutoReconnect("down")
        except AutoReconnect:
            raise KeyError("bug in the except block")  # noqa: B904
    except KeyError as bug:
        assert not is_transient(bug)


def test_backoff_grows_is_capped_jittered_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [backoff(n, base=0.5, cap=30, rng=rng) for n in range(1, 12)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(d <= 30 for d in delays) and delays[-1] >= 15
    assert backoff(1, GraphThrottled(429, "x", "y", retry_after=7), cap=30) == 7
    assert backoff(1, Retryable("x", retry_after=90), cap=30) == 30
    assert retry_after(RuntimeError("no delay")) is None
