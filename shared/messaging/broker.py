"""The FastStream Kafka broker every service uses, configured for durability.

acks=all + idempotent producer: a publish returns only once the record is durably in Kafka,
which is what lets the ingress answer 202 and the syncer save a deltaLink afterwards.
"""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from shared.settings import Settings


def create_broker(settings: Settings, client_id: str) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"smvue-{client_id}",
        acks="all",
        enable_idempotence=True,
        graceful_timeout=settings.shutdown_grace_seconds,
        logger=None,
    )
