"""Where the infrastructure is reached: what `infra up` prints and tests receive."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InfraEndpoints:
    kafka_bootstrap_servers: str  # e.g. 127.0.0.1:19092
    mongodb_uri: str  # e.g. mongodb://127.0.0.1:27027/?directConnection=true

    def as_env(self) -> dict[str, str]:
        """The settings' environment variables (see shared/settings.py)."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "MONGODB_URI": self.mongodb_uri,
        }

    def as_env_lines(self) -> list[str]:
        """`NAME=value` lines, safe for `eval` (the values hold no shell metacharacters)."""
        return [f"{name}={value}" for name, value in self.as_env().items()]
