"""Where the infrastructure is reached: what `infra up` prints and tests receive."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InfraEndpoints:
    kafka_bootstrap_servers: str
    mongodb_uri: str

    def as_env_lines(self) -> list[str]:
        return [
            f"KAFKA_BOOTSTRAP_SERVERS={self.kafka_bootstrap_servers}",
            f"MONGODB_URI={self.mongodb_uri}",
        ]
