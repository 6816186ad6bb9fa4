"""A throttled Graph answer is transient: the writer keeps retrying the command (the
consumer's backoff, Retry-After honoured) instead of failing it quickly, and only a command
older than its patience (`TRANSIENT_PATIENCE`, 5 min) ends `throttled` — a bounded time
for the outcome (issue 10, long chaos run: 11 commands failed `throttled` in a 429 storm).
MongoDB is the real server; Graph and Kafka are fakes of our own ports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.writer.adapters.outlook import Answer
from services.writer.handlers import TRANSIENT_PATIENCE
from shared.contracts.outcomes import CommandFailed, CommandSucceeded
from shared.graph.errors import GraphThrottled
from shared.messaging.failures import Retryable, is_transient, retry_after
from shared.mongo import Document
from tests.fixtures.faults import RecordingPublisher
from tests.fixtures.writer import FakeOutlook, writer_owning

pytestmark = pytest.mark.integration


class ThrottledOutlook(FakeOutlook):
    """Graph answers 429 (Retry-After 7) to every cancel, after the client's retries."""

    async def cancel(self, connection_id: str, event_id: str, comment: str | None) -> Answer:
        raise GraphThrottled(429, "TooManyRequests", "slow down", "req-429", 7.0)


async def test_a_throttled_command_is_retried_until_its_patience_runs_out(
    db: AsyncDatabase[Document],
) -> None:
    outlook = ThrottledOutlook()
    sink = RecordingPublisher()
    writer = await writer_owning(db, outlook, sink, "t")
    handlers, store, command = writer.handlers, writer.store, writer.cancel

    with pytest.raises(Retryable) as raised:  # fresh: retried, no outcome yet
        await handlers.on_command(command)
    assert is_transient(raised.value) and retry_after(raised.value) == 7.0
    assert not sink.of(CommandFailed) and not sink.of(CommandSucceeded)

    with pytest.raises(Retryable):  # the redelivery, still within patience
        await handlers.on_command(command)
    assert not sink.of(CommandFailed)

    old = command.model_copy(
        update={"occurred_at": datetime.now(UTC) - TRANSIENT_PATIENCE - timedelta(seconds=1)}
    )
    await handlers.on_command(old)  # past its patience: the outcome, in bounded time
    failed = sink.of(CommandFailed)
    assert len(failed) == 1 and failed[0].payload.code.value == "throttled"
    owned = await store.owned("m-t")
    assert owned is not None and owned.state == "active"  # the intent was abandoned
