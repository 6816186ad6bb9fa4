"""The FastStream Kafka broker every service uses, configured for durability.

acks=all + idempotent producer: a publish returns only once the record is durably in Kafka,
which is what lets the ingress answer 202 and the syncer save a deltaLink afterwards.

FastStream is used for publishing only; consuming is `shared.messaging.consumer`'s keyed
engine. The consumers `subscribe` registers live on the broker (`broker.consumers`): they
start after the broker started and stop (finishing and committing what is in flight)
before its producer closes.

Partitioning: Kafka's default partitioner (murmur2 of the key), except that a key ending in
`WRITER_KEY_SUFFIX` is hashed without it.
The meetings topic's two producers key their records differently so compaction keeps each
one's latest (ADR 0009), yet one meeting's records stay in one partition, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

from aiokafka.partitioner import DefaultPartitioner
from faststream.kafka import KafkaBroker

from shared.contracts.meetings import WRITER_KEY_SUFFIX
from shared.settings import Settings

_DEFAULT = DefaultPartitioner()
_SUFFIX = WRITER_KEY_SUFFIX.encode()


def partition_key(key: bytes) -> bytes:
    """The part of a record key that chooses its partition."""
    return key.removesuffix(_SUFFIX)


def partition_for(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """Kafka's default partitioner (murmur2) applied to `partition_key(key)`: a writer's
    record of a meeting lands in the partition of the syncer's records of it."""
    return int(
        _DEFAULT(None if key is None else partition_key(key), list(all_partitions), available)
    )


class ManagedConsumer(Protocol):
    group: str
    topics: tuple[str, ...]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def lag(self) -> dict[tuple[str, int], int]: ...


class SmvueBroker(KafkaBroker):
    """A KafkaBroker that also runs the keyed consumers registered on it."""

    consumers: list[ManagedConsumer]

    async def start(self) -> None:
        await super().start()
        for consumer in self.consumers:
            await consumer.start()

    async def stop(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        await super().stop(exc_type, exc_val, exc_tb)


def create_broker(settings: Settings, client_id: str) -> SmvueBroker:
    broker = SmvueBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"smvue-{client_id}",
        acks="all",
        enable_idempotence=True,
        partitioner=partition_for,
        graceful_timeout=settings.shutdown_grace_seconds,
        logger=None,
    )
    broker.consumers = []
    return broker
