"""Effect sequences are safe to retry from any point (issue 10, item 2).

Each test runs a handler whose publisher fails once at the step that used to come after a
state write, then runs it again as a redelivery (or the next attempt) would, and checks
that the second run completes what the first promised: the event is published, the state
is right, the outcome is the true one. MongoDB is the real server; Graph and Kafka are fakes
of our own ports (tests/fixtures/faults.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.errors import KafkaError
from pymongo.asynchronous.database import AsyncDatabase

from services.syncer.adapters.store import SyncerStore
from services.syncer.domain.jobs import Job
from services.syncer.handlers import SyncerHandlers
from services.syncer.settings import SyncerSettings
from services.syncer.subscriptions import SubscriptionKeeper
from services.syncer.tokens import SyncerTokens
from services.writer.adapters.outlook import Answer
from shared.audit import AuditLog
from shared.connections.events import ConnectionEvents
from shared.connections.registry import ConnectionRegistry
from shared.contracts.audit import AuditOperation, AuditOutcome, AuditRecorded
from shared.contracts.connections import (
    ConnectionState,
    ConnectionStatusChanged,
)
from shared.contracts.meetings import MeetingRemoved
from shared.contracts.outcomes import CommandFailed, CommandSucceeded
from shared.contracts.subscriptions import SubscriptionEnded
from shared.graph.errors import GraphNotFound, ReauthorizationRequired
from shared.mongo import Document
from shared.settings import Settings
from tests.fixtures.faults import FlakyPublisher, RecordingPublisher, of_type
from tests.fixtures.writer import ACCOUNT, CID, FakeOutlook, writer_owning

pytestmark = pytest.mark.integration


async def test_a_cancel_whose_publish_failed_completes_on_retry(
    db: AsyncDatabase[Document],
) -> None:
    """Graph cancelled, then the removal's publish failed: the retry must not report the
    cancel as failed ("not found"/"not managed"), and must publish the removal."""
    outlook = FakeOutlook()
    sink = RecordingPublisher()
    publisher = FlakyPublisher(sink, when=of_type(MeetingRemoved))
    writer = await writer_owning(db, outlook, publisher, 1)
    handlers, store, command = writer.handlers, writer.store, writer.cancel

    with pytest.raises(Exception) as raised:  # Retryable (or the Kafka error itself)
        await handlers.on_command(command)
    assert isinstance(raised.value.__cause__ or raised.value, KafkaError)
    assert outlook.cancels == ["ev-1"] and publisher.failed  # the fault hit after Graph

    await handlers.on_command(command)  # the redelivery

    outcomes = [*sink.of(CommandSucceeded), *sink.of(CommandFailed)]
    assert [type(o) for o in outcomes] == [CommandSucceeded], outcomes
    assert outlook.cancels == ["ev-1"]  # cancelled once in Outlook
    removals = sink.of(MeetingRemoved)
    assert [r.payload.meeting_id for r in removals] == ["m-1"]  # type: ignore[attr-defined]
    owned = await store.owned("m-1")
    assert owned is not None and owned.state == "cancelled"
    audited = [a.payload.operation for a in sink.of(AuditRecorded) if isinstance(a, AuditRecorded)]
    assert audited == [AuditOperation.EVENT_CANCEL]

    await handlers.on_command(command)  # once more: finished, nothing new
    assert len(sink.of(CommandSucceeded)) == 1


async def test_a_cancel_whose_success_outcome_failed_to_publish_succeeds_on_retry(
    db: AsyncDatabase[Document],
) -> None:
    """Graph cancelled, everything was published and the meeting marked cancelled — then
    the outcome's publish failed (a Kafka restart; or the writer died there). The retry
    used to find the meeting `cancelled`, refuse it as event_not_found and report a
    cancel that happened as failed: the SMVue backend then shows a meeting Outlook no
    longer has (the chaos run of seed 20261208 lost 7 that way)."""
    outlook = FakeOutlook()
    sink = RecordingPublisher()
    publisher = FlakyPublisher(sink, when=of_type(CommandSucceeded))
    writer = await writer_owning(db, outlook, publisher, 3)
    handlers, store, command = writer.handlers, writer.store, writer.cancel

    with pytest.raises(Exception) as raised:
        await handlers.on_command(command)
    assert isinstance(raised.value.__cause__ or raised.value, KafkaError)
    owned = await store.owned("m-3")
    assert owned is not None and owned.state == "cancelled" and publisher.failed

    await handlers.on_command(command)  # the redelivery

    assert not sink.of(CommandFailed), sink.of(CommandFailed)
    succeeded = sink.of(CommandSucceeded)
    assert len(succeeded) == 1 and succeeded[0].payload.meeting_id == "m-3"  # type: ignore[attr-defined]
    assert outlook.cancels == ["ev-3"]  # cancelled once in Outlook

    other = command.model_copy(  # a second cancel, another command id
        update={"payload": command.payload.model_copy(update={"command_id": "cmd-again"})}
    )
    await handlers.on_command(other)
    failed = sink.of(CommandFailed)
    assert len(failed) == 1 and failed[0].payload.code.value == "event_not_found"  # type: ignore[attr-defined]


async def test_a_cancel_of_an_event_deleted_in_outlook_still_fails_honestly(
    db: AsyncDatabase[Document],
) -> None:
    """The retry rule must not turn every "gone" into success: an event the person deleted
    in Outlook before any cancel of ours ends as event_not_found."""
    sink = RecordingPublisher()
    writer = await writer_owning(db, FakeOutlook(), sink, 2, in_outlook=False)
    handlers, command = writer.handlers, writer.cancel
    await handlers.on_command(command)
    failed = sink.of(CommandFailed)
    assert len(failed) == 1 and failed[0].payload.code.value == "event_not_found"  # type: ignore[attr-defined]
    assert not sink.of(CommandSucceeded)


def _later(minutes: int) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


class FakeSubscriptionGraph:
    """The syncer's Graph port, subscriptions only."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    async def delete_subscription(self, connection_id: str, subscription_id: str) -> str:
        self.deleted.append(subscription_id)
        return f"req-delete-{len(self.deleted)}"


async def test_a_subscription_removal_whose_publish_failed_completes_on_retry(
    db: AsyncDatabase[Document],
) -> None:
    """Disconnect: the subscription-ended publish failed. The retry must still tell the
    ingress (subscription.ended) and delete it in Graph — it used to find nothing left."""
    store = SyncerStore(db)
    await store.put_subscription(CID, "sub-1", _later(60), "ab" * 32)
    sink = RecordingPublisher()
    publisher = FlakyPublisher(sink, when=of_type(SubscriptionEnded))
    graph = FakeSubscriptionGraph()
    keeper = SubscriptionKeeper(
        store,
        graph,  # type: ignore[arg-type]
        publisher,
        AuditLog(publisher, "syncer"),
        Settings(),
        SyncerSettings(),
    )
    with pytest.raises(KafkaError):
        await keeper.remove(CID, "ann", None, None)

    assert await keeper.remove(CID, "ann", None, None) is True  # the retry

    ended = sink.of(SubscriptionEnded)
    assert [e.payload.subscription_id for e in ended] == ["sub-1"]  # type: ignore[attr-defined]
    assert "sub-1" in graph.deleted
    assert await store.subscription(CID) is None
    deletes = [
        a.payload.outcome
        for a in sink.of(AuditRecorded)
        if isinstance(a, AuditRecorded)
        and a.payload.operation is AuditOperation.SUBSCRIPTION_DELETE
    ]
    assert deletes == [AuditOutcome.SUCCEEDED]


class Reauthorizing:
    """A round runner whose round finds the refresh token dead."""

    async def run(self, state: dict[str, Any], cause: Any = None) -> None:
        raise ReauthorizationRequired("invalid_grant")


async def test_a_pause_whose_publish_failed_reaches_the_card_on_retry(
    db: AsyncDatabase[Document],
) -> None:
    """The refresh token died mid-round and the card's status publish failed: the job must
    stay pending and the retry must publish reauthorization_required (it used to drop the
    pending jobs first, so no retry ever came, and the card said "connected")."""
    registry = ConnectionRegistry(db)
    await registry.connected("ann", ACCOUNT, ["Calendars.ReadWrite"], can_write=True)
    store = SyncerStore(db)
    await store.set_state(CID, user_id="ann", active=True)
    await store.request(CID, Job.ROUND.value, datetime.now(UTC))
    sink = RecordingPublisher()
    publisher = FlakyPublisher(sink, when=of_type(ConnectionStatusChanged))
    audit = AuditLog(publisher, "syncer")
    settings = SyncerSettings(retry_base_seconds=0.01, retry_max_seconds=0.01)
    handlers = SyncerHandlers(
        store=store,
        graph=None,  # type: ignore[arg-type]
        rounds=Reauthorizing(),  # type: ignore[arg-type]
        subscriptions=None,  # type: ignore[arg-type]
        registry=registry,
        events=ConnectionEvents(publisher, audit),
        vault=None,  # type: ignore[arg-type]
        tokens=SyncerTokens(None),  # type: ignore[arg-type]
        audit=audit,
        settings=settings,
        publisher=publisher,
    )
    state = await store.state(CID)
    assert state is not None
    with pytest.raises(KafkaError):
        await handlers.perform(Job.ROUND, state)
    after_failure = await store.state(CID)
    assert after_failure is not None
    assert Job.ROUND.value in (after_failure.get("pending") or {})  # still wanted: a retry

    await handlers.perform(Job.ROUND, after_failure)  # the retry

    cards = sink.of(ConnectionStatusChanged)
    assert [c.payload.state for c in cards] == [  # type: ignore[attr-defined]
        ConnectionState.REAUTHORIZATION_REQUIRED
    ]
    paused = await store.state(CID)
    assert paused is not None and paused.get("active") is False
    assert not (paused.get("pending") or {}).get(Job.ROUND.value)


class HeldAnswerOutlook(FakeOutlook):
    """Graph cancels, but its answer is held past the client's timeout; the client's own
    retry of the POST then meets 404 (what the chaos run's held answers did)."""

    async def cancel(self, connection_id: str, event_id: str, comment: str | None) -> Answer:
        await super().cancel(connection_id, event_id, comment)  # the write happened
        raise GraphNotFound(404, "ErrorItemNotFound", "The specified object was not found.")


async def test_a_cancel_whose_answer_was_held_and_retried_into_404_succeeds_and_is_audited(
    db: AsyncDatabase[Document],
) -> None:
    """Long chaos run (seed 20261203): 107 cancels failed `event_not_found` though their
    own first attempt had cancelled the event — the schedule's event was gone with no
    successful cancel, and Graph's write had no audit record. The event existed when the
    cancel began (read just before), so a 404 on the cancel is the cancel's own doing."""
    outlook = HeldAnswerOutlook()
    sink = RecordingPublisher()
    writer = await writer_owning(db, outlook, sink, 3)
    handlers, store, command = writer.handlers, writer.store, writer.cancel
    await handlers.on_command(command)
    outcomes = [*sink.of(CommandSucceeded), *sink.of(CommandFailed)]
    assert [type(o) for o in outcomes] == [CommandSucceeded], outcomes
    assert outlook.cancels == ["ev-3"]
    owned = await store.owned("m-3")
    assert owned is not None and owned.state == "cancelled"
    audited = [a.payload.operation for a in sink.of(AuditRecorded) if isinstance(a, AuditRecorded)]
    assert audited == [AuditOperation.EVENT_CANCEL]
