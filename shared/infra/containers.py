"""Real Kafka and MongoDB images through testcontainers 4, where a Docker engine runs.

For `SMVUE_TEST_INFRA=docker` only (this project's own machines have no Docker engine; the
default is the local launcher). testcontainers' `KafkaContainer` drives Confluent's image
scripts, so Apache's own image is run as a plain container instead: one KRaft node whose
advertised listener is the host port it is published on, fixed before start. Docker
publishes ports on the engine's interfaces, not only loopback: use it on a workstation.
The MongoDB container is a standalone mongod (no replica set), so transactions and change
streams are out, as they are unused by the project.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from shared.infra.endpoints import InfraEndpoints
from shared.infra.ports import free_port

KAFKA_IMAGE = "apache/kafka:4.1.1"
MONGO_IMAGE = "mongo:8.0"


@contextlib.contextmanager
def docker_infrastructure() -> Iterator[InfraEndpoints]:
    from testcontainers.community.mongodb import MongoDbContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    port = free_port()
    kafka = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, port)
        .with_envs(
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS="PLAINTEXT://:9092,CONTROLLER://:9093",
            KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{port}",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_AUTO_CREATE_TOPICS_ENABLE="false",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
            KAFKA_HEAP_OPTS="-Xms256m -Xmx1g",
        )
        .waiting_for(LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(120))
    )
    with kafka, MongoDbContainer(MONGO_IMAGE) as mongo:
        yield InfraEndpoints(
            f"127.0.0.1:{port}", f"{mongo.get_connection_url()}/?directConnection=true"
        )
