"""Replaying the compacted meetings topic rebuilds the same read model (issue 10, item 4).

`smvue.calendar.meetings.v1` is compacted and has two producers: the writer (a meeting it
created, `created_in_smvue=true`) and the syncer (the same meeting as found in Outlook).
Compaction keeps the last record per key, not the "best" one, so every producer's record
must carry the whole truth. The test runs the real services, schedules a meeting through
the writer and lets the syncer see it, adds Outlook-only 1:1s (one kept, one deleted, one
no longer a 1:1), copies the topic record for record into a topic that compacts at once
(tiny segments, no lag, any dirty ratio), waits until the broker compacted it, replays
it into a fresh projector and compares the two read models document for document.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.contracts.meetings import writer_record_key
from shared.contracts.outcomes import CommandSucceeded
from shared.contracts.topics import COMMAND_OUTCOMES, MEETINGS
from shared.infra.endpoints import InfraEndpoints
from shared.infra.ports import free_port
from shared.messaging.admin import topic_partitions
from shared.messaging.offsets import lag
from shared.settings import Settings
from tests.fixtures.kafka import TopicReader
from tests.fixtures.services import build, create_topics, running
from tests.fixtures.waiting import eventually
from tests.sync.conftest import running_world
from tests.sync.world import World, event
from tests.writer.test_writer import connected, new_id, outcome, schedule

pytestmark = pytest.mark.integration

COMPACT_AT_ONCE = {
    "cleanup.policy": "compact",
    "segment.ms": "100",
    "min.compaction.lag.ms": "0",
    "max.compaction.lag.ms": "100",
    "min.cleanable.dirty.ratio": "0.001",
    "delete.retention.ms": "100",
}
Record = tuple[int, bytes | None, bytes | None, list[tuple[str, bytes]]]


async def read_all(settings: Settings, topic: str) -> list[Record]:
    """Every record of the topic, in offset order per partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Record] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, items in batch.items():
                records += [(tp.partition, r.key, r.value, list(r.headers)) for r in items]
        return records
    finally:
        await consumer.stop()


async def read_model(world_settings: Settings) -> dict[str, dict[str, Any]]:
    world = World(None, world_settings, None)  # type: ignore[arg-type]
    return {str(d["_id"]): d for d in await world.mongo_docs("one_on_ones")}


async def caught_up(settings: Settings, service: str, topic: str) -> None:
    """The service's group on `topic` committed every record up to the end."""
    group = f"{settings.group_id(service)}.{MEETINGS.name}"
    behind: list[Any] = []
    for _ in range(150):
        behind = [p for p in await lag(settings, group, [topic]) if p.lag]
        if not behind:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{service} still behind on {topic}: {behind}")


async def test_a_compacted_meetings_topic_rebuilds_the_same_read_model(
    infra: InfraEndpoints,
) -> None:
    async with running_world(infra) as world:
        await connected(world)
        ann, bob = world.cloud.manager, world.cloud.member
        async with TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes:
            made = new_id("made")
            await world.publish(schedule(made))
            done = await outcome(outcomes, made)
            assert isinstance(done, CommandSucceeded)
        # Outlook's own 1:1s (once subscribed): one kept, one deleted after it was imported
        # (it stays listed, cancelled: a second record for its key), one that grows a third
        # attendee (no longer a 1:1: a removal record).
        await eventually(world.subscriptions, lambda s: len(s) == 1)
        soon = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
        await world.as_user(
            "POST", "/me/events", ann.id, json=event("Outlook 1:1", soon, [bob.mail], "k")
        )
        gone = await world.as_user(
            "POST",
            "/me/events",
            ann.id,
            json=event("Deleted 1:1", soon + timedelta(hours=2), [bob.mail], "g"),
        )
        grown = await world.as_user(
            "POST",
            "/me/events",
            ann.id,
            json=event("Grown 1:1", soon + timedelta(hours=4), [bob.mail], "r"),
        )
        await world.wait_read_model("ann", lambda d: len(d) == 4)
        await world.as_user("DELETE", f"/me/events/{gone['id']}", ann.id)
        await world.as_user(
            "PATCH",
            f"/me/events/{grown['id']}",
            ann.id,
            json={
                "attendees": [
                    {"emailAddress": {"address": a}, "type": "required"}
                    for a in (bob.mail, "carol@elsewhere.example")
                ]
            },
        )

        def settled(docs: list[dict[str, Any]]) -> bool:
            flags = {d["subject"]: d["is_cancelled"] for d in docs}
            return "Grown 1:1" not in flags and flags.get("Deleted 1:1") is True and len(docs) == 3

        await world.wait_read_model("ann", settled)
        # Both producers' records of the writer's meeting are on the topic (the syncer saw
        # it in Outlook), the grown one's removal too, and the projector applied them all.
        mine = done.payload.meeting_id
        topic_name = world.settings.topic(MEETINGS)
        records: list[Record] = []
        for _ in range(150):
            records = await read_all(world.settings, topic_name)
            seen = {r[1] for r in records}
            removals = [r for r in records if r[2] and b'"meeting.removed"' in r[2]]
            if {mine.encode(), writer_record_key(mine).encode()} <= seen and removals:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"records of both producers never came: {sorted(seen)}")
        await caught_up(world.settings, "projector", topic_name)
        original = await read_model(world.settings)
        assert len(original) == 4 and original[mine]["created_in_smvue"] is True
        assert sum(bool(d["removed"]) for d in original.values()) == 1
        records = await read_all(world.settings, topic_name)

        # The same records, in the same partitions and order, in a topic that compacts.
        replay = world.settings.model_copy(
            update={
                "topic_prefix": f"c{uuid.uuid4().hex[:8]}.",
                "mongodb_database": f"c_{uuid.uuid4().hex[:10]}",
                "projector_port": free_port(),
            }
        )
        topic = replay.topic(MEETINGS)
        admin = AIOKafkaAdminClient(bootstrap_servers=replay.kafka_bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 2, 1, topic_configs=COMPACT_AT_ONCE)])
        finally:
            await admin.close()
        await create_topics(replay, partitions=2)  # the others, as the registry has them
        producer = AIOKafkaProducer(bootstrap_servers=replay.kafka_bootstrap_servers, acks="all")
        await producer.start()
        try:
            for partition, key, value, headers in records:
                await producer.send_and_wait(
                    topic, value, key=key, partition=partition, headers=headers
                )
            await asyncio.sleep(0.3)
            # Roll the segments (the active one is never compacted): each partition's last
            # record once more — a duplicate consumers drop.
            for partition in sorted({r[0] for r in records}):
                last = [r for r in records if r[0] == partition][-1]
                await producer.send_and_wait(
                    topic, last[2], key=last[1], partition=partition, headers=last[3]
                )
        finally:
            await producer.stop()
        keys = len({(r[0], r[1]) for r in records})
        assert keys < len(records), "nothing for compaction to remove: the test proves nothing"
        # Compacted: one record per key, plus each partition's duplicate in its active segment.
        target = keys + len({r[0] for r in records})
        compacted: list[Record] = []
        for _ in range(120):  # the log cleaner wakes every 15 s by default
            compacted = await read_all(replay, topic)
            if len(compacted) == target:
                break
            await asyncio.sleep(0.5)
        assert len(compacted) == target, f"not compacted within 60 s: {len(compacted)} records"

        async with running(build("projector", replay)):
            await caught_up(replay, "projector", topic)
            rebuilt = await read_model(replay)
        assert rebuilt == original
