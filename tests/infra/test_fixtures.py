"""The session fixtures: a working Kafka + MongoDB, and names no other test shares."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from shared.infra.endpoints import InfraEndpoints

pytestmark = pytest.mark.integration

_seen: dict[str, str] = {}


async def test_mongo_db_is_fresh_and_dropped_afterwards(
    infra: InfraEndpoints, mongo_db: str
) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_uri)
    try:
        assert mongo_db not in await client.list_database_names()
        await client[mongo_db].things.insert_one({"_id": 1})
        assert mongo_db in await client.list_database_names()
    finally:
        await client.close()
    _seen["db"] = mongo_db


async def test_the_previous_database_is_gone(infra: InfraEndpoints, unique_name: str) -> None:
    if "db" not in _seen:
        pytest.skip("runs after the test above")
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_uri)
    try:
        assert _seen["db"] not in await client.list_database_names()
    finally:
        await client.close()
    assert unique_name.startswith("t-test-the-previous-database-is-gone-")


async def test_kafka_takes_topics_named_after_unique_name(
    infra: InfraEndpoints, unique_name: str
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{unique_name}.events", 1, 1)])
        # Metadata reaches the broker a moment after the controller created the topic.
        deadline = asyncio.get_running_loop().time() + 15
        while f"{unique_name}.events" not in await admin.list_topics():
            assert asyncio.get_running_loop().time() < deadline, "topic never listed"
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
