"""Which real infrastructure the integration tests use.

1. External: both `KAFKA_BOOTSTRAP_SERVERS` and `MONGODB_URI` are set → used as they are.
2. `SMVUE_TEST_INFRA=docker` → testcontainers (real Kafka and MongoDB images).
3. Otherwise (`local`, the default) → a dedicated LocalInfra for the test session, on free
   ports under its own home, so a developer's running `infra up` is never touched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from shared.infra.endpoints import InfraEndpoints
from shared.infra.local import LocalInfra


@contextlib.contextmanager
def integration_infrastructure() -> Iterator[InfraEndpoints]:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mongo = os.environ.get("MONGODB_URI")
    if kafka and mongo:
        yield InfraEndpoints(kafka, mongo)
        return
    mode = os.environ.get("SMVUE_TEST_INFRA", "local")
    if mode == "docker":
        from shared.infra.containers import docker_infrastructure

        with docker_infrastructure() as endpoints:
            yield endpoints
        return
    if mode != "local":
        raise ValueError(f"SMVUE_TEST_INFRA must be local or docker, not {mode!r}")
    with tempfile.TemporaryDirectory(prefix="smvue-test-infra-") as home:
        infra = LocalInfra(Path(home), prefer_default_ports=False)
        try:
            yield infra.up()
        finally:
            infra.down()
