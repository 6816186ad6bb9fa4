"""The keyed consumer engine against the real broker: lanes per key run concurrently and
in order, transient failures are retried without bound and never dead-lettered, dead
letters are redacted, batches isolate a poison record, offsets commit as a watermark."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from pymongo.errors import AutoReconnect

from shared.contracts.roster import RosterUpdated
from shared.contracts.topics import ROSTER
from shared.messaging.broker import create_broker
from shared.messaging.consumer import subscribe
from shared.messaging.publisher import KafkaPublisher
from shared.settings import Settings
from tests.fixtures.services import create_topics, isolated_settings
from tests.foundation.test_messaging_roundtrip import eventually, read_all, roster

pytestmark = pytest.mark.integration


@pytest.fixture
async def settings(infra: Any) -> Settings:
    settings = isolated_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri)
    await create_topics(settings, partitions=1)
    return settings


async def test_a_slow_key_does_not_hold_up_other_keys_of_its_partition(
    settings: Settings,
) -> None:
    release = asyncio.Event()
    seen: list[tuple[str, int]] = []

    async def handle(message: RosterUpdated) -> None:
        if message.payload.manager_id == "slow" and message.payload.version == 1:
            await release.wait()
        seen.append((message.payload.manager_id, message.payload.version))

    broker = create_broker(settings, "projector")
    consumer = subscribe(broker, settings, ROSTER, "projector", handle)
    await broker.start()
    try:
        await KafkaPublisher(broker, settings).publish_all(
            [roster("slow", 1), roster("slow", 2), *(roster(f"m{i}", 1) for i in range(5))]
        )
        await eventually(lambda: len(seen) == 5)  # every other mailbox, one partition
        assert ("slow", 2) not in seen  # its own order is kept
        assert consumer.lag()[(settings.topic(ROSTER), 0)] == 7  # nothing past offset 0
        release.set()
        await eventually(lambda: len(seen) == 7)
        assert seen[-2:] == [("slow", 1), ("slow", 2)]
        await eventually(lambda: consumer.lag() == {(settings.topic(ROSTER), 0): 0})
        assert broker.consumers == [consumer]  # type: ignore[comparison-overlap]
        assert consumer.group == f"{settings.group_id('projector')}.{ROSTER.name}"
    finally:
        await broker.stop()


async def test_transient_failures_are_retried_past_any_bound_and_never_dead_lettered(
    settings: Settings,
) -> None:
    attempts: list[int] = []

    async def handle(message: RosterUpdated) -> None:
        attempts.append(message.payload.version)
        if message.payload.version == 1 and attempts.count(1) <= 12:
            raise AutoReconnect("mongo: connection refused")

    broker = create_broker(settings, "syncer")
    subscribe(broker, settings, ROSTER, "syncer", handle, base_backoff=0.01, max_backoff=0.02)
    await broker.start()
    try:
        await KafkaPublisher(broker, settings).publish_all([roster("m", 1), roster("m", 2)])
        await eventually(lambda: 2 in attempts)
    finally:
        await broker.stop()
    assert attempts == [1] * 13 + [2]
    assert await read_all(settings, settings.dead_letter_topic(ROSTER), 1, timeout=3) == []


async def test_a_dead_letter_reason_is_redacted_like_logs(settings: Settings) -> None:
    async def handle(message: RosterUpdated) -> None:
        raise ValueError(
            "token endpoint said no: refresh_token=0.AAA-secret-rt code=M.C5_secret "
            "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl"
        )

    broker = create_broker(settings, "writer")
    subscribe(broker, settings, ROSTER, "writer", handle)
    await broker.start()
    try:
        await KafkaPublisher(broker, settings).publish(roster("m", 1))
        dead = await read_all(settings, settings.dead_letter_topic(ROSTER), 1)
    finally:
        await broker.stop()
    error = dead[0][1]["x-dlq-error"]
    assert "token endpoint said no" in error and "[redacted]" in error
    for secret in ("0.AAA-secret-rt", "M.C5_secret", "eyJhbGciOiJSUzI1NiJ9", "c2lnbmF0dXJl"):
        assert secret not in error


async def test_a_batch_handler_gets_lists_and_only_the_poison_record_is_dead_lettered(
    settings: Settings,
) -> None:
    batches: list[list[tuple[str, int]]] = []

    async def handle(messages: list[RosterUpdated]) -> None:
        ids = [(m.payload.manager_id, m.payload.version) for m in messages]
        if ("poison", 1) in ids:
            raise ValueError("cannot apply this one")
        batches.append(ids)

    broker = create_broker(settings, "projector")
    subscribe(broker, settings, ROSTER, "projector", handle, batch=True)
    raw = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await raw.start()
    try:
        topic = settings.topic(ROSTER)
        for message in [roster("a", 1), roster("poison", 1), roster("b", 1)]:
            await raw.send_and_wait(topic, message.to_bytes(), key=b"k")
        await raw.send_and_wait(topic, b"{broken", key=b"k")
        await broker.start()
        await eventually(lambda: sum(len(b) for b in batches) == 2)
        dead = await read_all(settings, settings.dead_letter_topic(ROSTER), 2)
    finally:
        await raw.stop()
        await broker.stop()
    assert sorted(i for b in batches for i in b) == [("a", 1), ("b", 1)]
    assert [h["x-dlq-reason"] for _, h in dead] == ["invalid_record", "handler_failed"]
    assert any(len(b) > 1 for b in batches) or len(batches) == 2


async def test_a_backlog_reaches_a_batch_handler_in_bounded_slices(settings: Settings) -> None:
    """A partition's whole backlog is not parsed and handed over at once (memory): a batch
    is at most 500 records, and every record still arrives, in order."""
    batches: list[list[int]] = []

    async def handle(messages: list[RosterUpdated]) -> None:
        batches.append([m.payload.version for m in messages])

    broker = create_broker(settings, "projector")
    subscribe(broker, settings, ROSTER, "projector", handle, batch=True)
    raw = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=5)
    await raw.start()
    try:
        topic = settings.topic(ROSTER)
        sent = [raw.send(topic, roster("a", n).to_bytes(), key=b"k") for n in range(1, 1201)]
        await asyncio.gather(*[await s for s in sent])
        await broker.start()
        await eventually(lambda: sum(len(b) for b in batches) == 1200, timeout=60)
    finally:
        await raw.stop()
        await broker.stop()
    assert max(len(b) for b in batches) <= 500
    assert [v for b in batches for v in b] == list(range(1, 1201))
