"""Consumer-group offsets for operators: lag per partition, and resets while a group is idle.

Lag is computed here with Kafka's admin and consumer APIs (committed offset vs. end offset),
for any group; the services' own lag metric is the consumer engine's. A reset commits new
offsets for the group from outside it, so it is refused while the group has live members
(their next commit would overwrite it, and they would not re-read anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from shared.messaging.admin import topic_partitions
from shared.settings import Settings


@dataclass(frozen=True)
class GroupState:
    group: str
    state: str  # Stable, Empty, Dead (no such group), PreparingRebalance...
    members: int


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int

    def row(self) -> dict[str, Any]:
        return self.__dict__.copy()


class LiveMembers(Exception):
    """The group has members: its offsets are not reset."""


async def describe(settings: Settings, group: str) -> GroupState:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    [found] = response.groups
    return GroupState(group=group, state=str(found[2]), members=len(found[5]))


async def committed(settings: Settings, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def lag(settings: Settings, group: str, topics: Sequence[str] = ()) -> list[PartitionLag]:
    """Per partition of the group's topics (those it committed on, or `topics`)."""
    done = await committed(settings, group)
    names = sorted(set(topics) or {tp.topic for tp in done})
    partitions = await topic_partitions(settings, names)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return [
        PartitionLag(tp.topic, tp.partition, done.get(tp), ends[tp], ends[tp] - done.get(tp, 0))
        for tp in partitions
    ]


async def reset(
    settings: Settings,
    group: str,
    *,
    to_datetime: datetime | None = None,
    topics: Sequence[str] = (),
    dry_run: bool = False,
) -> dict[TopicPartition, int]:
    """Commits the earliest offsets (or the first at/after `to_datetime`) for the group."""
    state = await describe(settings, group)
    if state.members:
        raise LiveMembers(f"group {group} has {state.members} live member(s) ({state.state})")
    names = sorted(set(topics) or {tp.topic for tp in await committed(settings, group)})
    partitions = await topic_partitions(settings, names)
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        earliest = await consumer.beginning_offsets(partitions)
        target = dict(earliest)
        if to_datetime is not None:
            ends = await consumer.end_offsets(partitions)
            at = await consumer.offsets_for_times(
                {tp: int(to_datetime.timestamp() * 1000) for tp in partitions}
            )
            for tp in partitions:
                found = at.get(tp)
                target[tp] = found.offset if found is not None else ends[tp]
        if not dry_run:
            consumer.assign(partitions)  # assigned, not subscribed: never joins the group
            await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in target.items()})
        return target
    finally:
        await consumer.stop()


async def audit_reset(settings: Settings, group: str, target: dict[TopicPartition, int]) -> None:
    """One audit record per reset (as the service the group belongs to)."""
    from typing import cast

    from shared.audit import AuditLog, ServiceName
    from shared.contracts.audit import AuditOperation, AuditOutcome
    from shared.messaging.broker import create_broker
    from shared.messaging.dlq import service_of
    from shared.messaging.publisher import KafkaPublisher

    broker = create_broker(settings, "operator")
    await broker.connect()
    try:
        service = cast(ServiceName, service_of(group, settings) or "projector")
        moved = ", ".join(f"{tp.topic}[{tp.partition}]={o}" for tp, o in sorted(target.items()))
        await AuditLog(KafkaPublisher(broker, settings), service).record(
            AuditOperation.OFFSETS_RESET,
            AuditOutcome.SUCCEEDED,
            target_ids=[group],
            detail=f"operator reset: {moved}",
        )
    finally:
        await broker.stop()
