"""Publishing envelopes: the topic comes from the registry, the key from the envelope."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from faststream.kafka import KafkaBroker

from shared.contracts.envelope import Envelope
from shared.contracts.topics import topic_for
from shared.settings import Settings


def envelope_headers(envelope: Envelope) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "x-message-type": envelope.type,
        "x-schema-version": str(envelope.schema_version),
        "x-message-id": str(envelope.id),
    }
    if envelope.correlation_id:
        headers["x-correlation-id"] = envelope.correlation_id
    if envelope.causation_id:
        headers["x-causation-id"] = envelope.causation_id
    return headers


class Publisher(Protocol):
    async def publish(self, envelope: Envelope) -> None: ...

    async def publish_all(self, envelopes: Sequence[Envelope]) -> None: ...


class KafkaPublisher:
    """Publishes and waits for the broker's acknowledgement (acks=all)."""

    def __init__(self, broker: KafkaBroker, settings: Settings) -> None:
        self._broker = broker
        self._settings = settings

    async def publish(self, envelope: Envelope) -> None:
        await self._broker.publish(
            envelope.to_bytes(),
            topic=self._settings.topic(topic_for(envelope)),
            key=envelope.key.encode(),
            headers=envelope_headers(envelope),
        )

    async def publish_all(self, envelopes: Sequence[Envelope]) -> None:
        """Sends all, then waits for every acknowledgement (pipelined, still ordered per key)."""
        pending = [
            await self._broker.publish(
                envelope.to_bytes(),
                topic=self._settings.topic(topic_for(envelope)),
                key=envelope.key.encode(),
                headers=envelope_headers(envelope),
                no_confirm=True,
            )
            for envelope in envelopes
        ]
        if pending:
            await asyncio.gather(*pending)
