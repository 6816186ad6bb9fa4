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
from services.writer.adapters.store import Ownership, WriterStore
from services.writer.domain.outlook_event import SMVUE_TAG_ID
from services.writer.handlers import TRANSIENT_PATIENCE, WriterHandlers
from shared.audit import AuditLog
from shared.connections.events import ConnectionEvents
from shared.connections.registry import ConnectionRegistry
from shared.contracts.commands import CancelMeeting, CancelMeetingRequest
from shared.contracts.outcomes import CommandFailed, CommandSucceeded
from shared.graph.errors import GraphThrottled
from shared.messaging.failures import Retryable, is_transient, retry_after
from shared.mongo import Document
from tests.fixtures.faults import RecordingPublisher
from tests.reliability.test_effect_order import ACCOUNT, CID, FakeOutlook

pytestmark = pytest.mark.integration


class ThrottledOutlook(FakeOutlook):
    """Graph answers 429 (Retry-After 7) to every cancel, after the client's retries."""

    async def cancel(self, connection_id: str, event_id: str, comment: str | None) -> Answer:
        raise GraphThrottled(429, "TooManyRequests", "slow down", "req-429", 7.0)


async def test_a_throttled_command_is_retried_until_its_patience_runs_out(
    db: AsyncDatabase[Document],
) -> None:
    registry = ConnectionRegistry(db)
    await registry.connected("ann", ACCOUNT, ["Calendars.ReadWrite"], can_write=True)
    store = WriterStore(db)
    outlook = ThrottledOutlook()
    outlook.events["ev-t"] = {
        "id": "ev-t",
        "singleValueExtendedProperties": [{"id": SMVUE_TAG_ID, "value": "cmd-made-t"}],
    }
    await store.own(
        Ownership(
            meeting_id="m-t",
            connection_id=CID,
            manager_id="ann",
            graph_event_id="ev-t",
            ical_uid=None,
            command_id="cmd-made-t",
            member_email="bob@contoso.test",
            member_name="Bob",
            time_zone="UTC",
            state="active",
        )
    )
    sink = RecordingPublisher()
    handlers = WriterHandlers(
        store=store,
        outlook=outlook,  # type: ignore[arg-type]
        registry=registry,
        publisher=sink,
        audit=AuditLog(sink, "writer"),
        events=ConnectionEvents(sink, AuditLog(sink, "writer")),
    )
    command = CancelMeeting.build(
        key=CID,
        payload=CancelMeetingRequest(command_id="cmd-cancel-t", manager_id="ann", meeting_id="m-t"),
    )

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
