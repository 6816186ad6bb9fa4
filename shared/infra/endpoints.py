"""Where the infrastructure is reached: what `infra up` prints and tests receive."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# The local default's connection options (ADR 0002): retryable writes off, because
# SecantusDB's registry of retryable writes makes every write slower once it has ~10,000
# entries, and every write of this system is idempotent (keyed, versioned, conditional).
# An external MongoDB (MONGODB_URI) keeps whatever its URI says (PyMongo: retryable on).
LOCAL_MONGO_OPTIONS = "directConnection=true&retryWrites=false"
_SHELL_SAFE = re.compile(r"[\w@%+=:,./?-]*")


@dataclass(frozen=True)
class InfraEndpoints:
    kafka_bootstrap_servers: str  # e.g. 127.0.0.1:19092
    mongodb_uri: str  # e.g. mongodb://127.0.0.1:27027/?directConnection=true&retryWrites=false

    def as_env(self) -> dict[str, str]:
        """The settings' environment variables (see shared/settings.py)."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "MONGODB_URI": self.mongodb_uri,
        }

    def as_env_lines(self) -> list[str]:
        """`NAME=value` lines, safe for `eval` (a value with a shell metacharacter, such as
        the `&` between URI options, is quoted)."""
        return [
            f"{name}={value if _SHELL_SAFE.fullmatch(value) else shlex.quote(value)}"
            for name, value in self.as_env().items()
        ]
