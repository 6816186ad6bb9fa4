"""Foundation, against the real broker and MongoDB server: records flow between services,
bad records are dead-lettered without stopping the consumer, documents round-trip."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo.errors import DuplicateKeyError

from shared.contracts.roster import Roster, RosterUpdated, TeamMember
from shared.contracts.topics import ROSTER
from shared.messaging.broker import create_broker
from shared.messaging.consumer import Retryable, subscribe
from shared.messaging.publisher import KafkaPublisher
from shared.mongo import IndexSpec, create_mongo_client, ensure_indexes
from shared.settings import Settings
from tests.fixtures.services import create_topics, isolated_settings

pytestmark = pytest.mark.integration


def roster(manager: str, version: int, *emails: str) -> RosterUpdated:
    return RosterUpdated.build(
        key=manager,
        payload=Roster(
            manager_id=manager,
            members=[
                TeamMember(member_id=e.split("@")[0], email=e, display_name=e.split("@")[0])
                for e in emails
            ],
            version=version,
            updated_at=datetime.now(UTC),
        ),
    )


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


@pytest.fixture
async def settings(infra: Any) -> Settings:
    settings = isolated_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri)
    await create_topics(settings, partitions=2)
    return settings


async def test_a_record_published_by_one_service_is_consumed_by_another(
    settings: Settings,
) -> None:
    received: list[RosterUpdated] = []

    async def handle(message: RosterUpdated) -> None:
        received.append(message)

    consumer_broker = create_broker(settings, "projector")
    subscribe(consumer_broker, settings, ROSTER, "projector", handle)
    producer_broker = create_broker(settings, "ingress")
    await consumer_broker.start()
    await producer_broker.start()
    try:
        sent = roster("mgr-1", 1, "ana@contoso.com")
        await KafkaPublisher(producer_broker, settings).publish(sent)
        await eventually(lambda: len(received) == 1)
        assert received[0] == sent
    finally:
        await producer_broker.stop()
        await consumer_broker.stop()


async def test_a_malformed_record_is_dead_lettered_and_the_next_one_is_processed(
    settings: Settings,
) -> None:
    received: list[RosterUpdated] = []

    async def handle(message: RosterUpdated) -> None:
        if message.payload.manager_id == "explodes":
            raise ValueError("cannot handle this manager")
        received.append(message)

    broker = create_broker(settings, "syncer")
    subscribe(broker, settings, ROSTER, "syncer", handle)
    await broker.start()
    raw = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await raw.start()
    try:
        topic = settings.topic(ROSTER)
        await raw.send_and_wait(topic, b"{not json", key=b"m", headers=[("origin", b"test")])
        await raw.send_and_wait(topic, b'{"type": "roster.updated", "key": "m"}', key=b"m")
        await raw.send_and_wait(topic, roster("explodes", 1).to_bytes(), key=b"m")
        good = roster("m", 2, "bo@contoso.com")
        await raw.send_and_wait(topic, good.to_bytes(), key=b"m")
        await eventually(lambda: len(received) == 1)
        assert received[0] == good
    finally:
        await raw.stop()
        await broker.stop()

    dead = await read_all(settings, settings.dead_letter_topic(ROSTER), expected=3)
    reasons = [headers["x-dlq-reason"] for _, headers in dead]
    assert reasons == ["invalid_record", "invalid_record", "handler_failed"]
    assert dead[0][0] == b"{not json"
    assert dead[0][1]["origin"] == "test"  # original headers are kept
    assert "payload" in dead[1][1]["x-dlq-error"]
    assert "cannot handle this manager" in dead[2][1]["x-dlq-error"]
    assert all(h["x-dlq-source-topic"] == settings.topic(ROSTER) for _, h in dead)


async def test_a_retryable_failure_is_retried_in_order_not_dead_lettered(
    settings: Settings,
) -> None:
    attempts: list[int] = []

    async def handle(message: RosterUpdated) -> None:
        attempts.append(message.payload.version)
        if message.payload.version == 1 and attempts.count(1) < 3:
            raise Retryable("mongo briefly unavailable", retry_after=0.05)

    broker = create_broker(settings, "writer")
    subscribe(broker, settings, ROSTER, "writer", handle)
    await broker.start()
    try:
        publisher = KafkaPublisher(broker, settings)
        await publisher.publish_all([roster("m", 1), roster("m", 2)])
        await eventually(lambda: 2 in attempts)
    finally:
        await broker.stop()
    assert attempts == [1, 1, 1, 2]


async def read_all(
    settings: Settings, topic: str, expected: int, timeout: float = 20
) -> list[tuple[bytes, dict[str, str]]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[tuple[bytes, dict[str, str]]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    out.append((record.value or b"", headers))
    finally:
        await consumer.stop()
    return out


async def test_a_document_round_trips_and_stale_versions_are_refused(settings: Settings) -> None:
    client = create_mongo_client(settings)
    try:
        db = client[settings.mongodb_database]
        await ensure_indexes(db, [IndexSpec("docs", [("manager_id", 1), ("start", 1)])])
        start = datetime(2030, 5, 1, 9, 30, tzinfo=UTC)
        await db.docs.update_one(
            {"_id": "a", "version": {"$lt": 5}},
            {"$set": {"version": 5, "manager_id": "m", "start": start}},
            upsert=True,
        )
        with pytest.raises(DuplicateKeyError):  # an older version must not win
            await db.docs.update_one(
                {"_id": "a", "version": {"$lt": 3}}, {"$set": {"version": 3}}, upsert=True
            )
        stored = await db.docs.find_one({"_id": "a"})
        assert stored == {"_id": "a", "version": 5, "manager_id": "m", "start": start}
        names = [index["name"] async for index in await db.docs.list_indexes()]
        assert "manager_id_1_start_1" in names
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()
