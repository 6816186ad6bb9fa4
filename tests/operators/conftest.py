"""Operator-command tests: real Kafka + MongoDB, the real services in-process, the CLI
invoked as a user would (typer's runner, in a thread: the commands run their own loop)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from pymongo import AsyncMongoClient
from typer.testing import CliRunner

from shared.cli import app
from shared.infra.endpoints import InfraEndpoints
from shared.messaging.admin import topic_partitions
from shared.settings import Settings
from tests.fixtures.services import create_topics, isolated_settings, reading_client, settings_env
from tests.fixtures.waiting import eventually, publish

__all__ = ["eventually", "publish"]

T = TypeVar("T")
Doc = dict[str, Any]
TOKEN = "operators-test-token"


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError:
            raise AssertionError(f"not JSON: {self.stdout!r}") from None


async def cli(settings: Settings, *args: str, input: str | None = None) -> Ran:
    """`smvue-sync <args>` with the test's settings as its environment."""
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, app, list(args), env=settings_env(settings), input=input
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


async def end_offsets(settings: Settings, topics: Sequence[str]) -> dict[TopicPartition, int]:
    partitions = await topic_partitions(settings, topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def read_topic(settings: Settings, topic: str) -> list[Doc]:
    """Every record's value (JSON) now on `topic`."""
    partitions = await topic_partitions(settings, [topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[Doc] = []
        remaining = [tp for tp in partitions if ends[tp]]
        async with asyncio.timeout(20):
            while remaining:
                for records in (await consumer.getmany(*remaining, timeout_ms=500)).values():
                    out.extend(json.loads(r.value) for r in records if r.value)
                remaining = [tp for tp in remaining if await consumer.position(tp) < ends[tp]]
        return out
    finally:
        await consumer.stop()


@pytest.fixture
async def settings(infra: InfraEndpoints) -> Settings:
    settings = isolated_settings(
        infra.kafka_bootstrap_servers, infra.mongodb_uri, service_tokens=[TOKEN]
    )
    await create_topics(settings, partitions=2)
    return settings


@pytest.fixture
async def mongo(settings: Settings) -> AsyncIterator[AsyncMongoClient[Doc]]:
    """A client for reading what the projector wrote; the test's databases go afterwards."""
    async with reading_client(settings) as client:
        yield client
