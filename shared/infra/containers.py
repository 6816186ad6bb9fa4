"""Real Kafka and MongoDB images through testcontainers, where a Docker engine runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from shared.infra.endpoints import InfraEndpoints

KAFKA_IMAGE = "apache/kafka:4.1.1"
MONGO_IMAGE = "mongo:8.0"


@contextlib.contextmanager
def docker_infrastructure() -> Iterator[InfraEndpoints]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka, MongoDbContainer(MONGO_IMAGE) as mongo:
        yield InfraEndpoints(
            kafka.get_bootstrap_server(), f"{mongo.get_connection_url()}/?directConnection=true"
        )
