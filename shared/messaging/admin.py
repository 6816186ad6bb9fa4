"""Creating the registry's topics: idempotent, so `topics create` can run on every start."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import TopicPartition

from shared.contracts.topics import ALL_TOPICS, DEAD_LETTER_CONFIG
from shared.settings import Settings


def planned_topics(settings: Settings, partitions: int | None = None) -> list[NewTopic]:
    """Every registry topic and dead-letter topic; `partitions` overrides (tests use fewer)."""
    topics = []
    for spec in ALL_TOPICS:
        count = partitions or spec.partitions
        topics.append(NewTopic(settings.topic(spec), count, 1, topic_configs=dict(spec.config)))
        if spec.has_dead_letter:
            topics.append(
                NewTopic(
                    settings.dead_letter_topic(spec), 1, 1, topic_configs=dict(DEAD_LETTER_CONFIG)
                )
            )
    return topics


async def create_topics(settings: Settings, partitions: int | None = None) -> list[str]:
    """Creates what is missing; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in planned_topics(settings, partitions) if t.name not in existing]
        if missing:
            # Another process may create some at the same moment: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def topic_partitions(settings: Settings, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of those of `topics` that exist (the rest are left out)."""
    if not topics:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return sorted(
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t["error_code"] == 0
        for p in t["partitions"]
    )
