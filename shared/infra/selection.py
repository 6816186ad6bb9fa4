"""Which real infrastructure the integration tests use.

1. External: `KAFKA_BOOTSTRAP_SERVERS` and `MONGODB_URI` both set → used as they are.
2. `SMVUE_TEST_INFRA=docker` → testcontainers (real Kafka and MongoDB images).
3. Otherwise (`local`, the default) → a dedicated LocalInfra for the test session, on free
   ports under its own home in `$SMVUE_HOME/test-infra/`, so a developer's running
   `infra up` is never touched. A session killed before its teardown leaves its servers
   behind; the next session stops them (their owner pid is gone) before starting its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from shared.infra.endpoints import InfraEndpoints
from shared.infra.local import LocalInfra
from shared.infra.paths import smvue_home
from shared.infra.processes import read_pid

OWNER_FILE = "owner.pid"


def test_infra_base() -> Path:
    return smvue_home() / "test-infra"


@contextlib.contextmanager
def integration_infrastructure() -> Iterator[InfraEndpoints]:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mongo = os.environ.get("MONGODB_URI")
    if kafka and mongo:
        yield InfraEndpoints(kafka, mongo)
        return
    if kafka or mongo:
        raise ValueError(
            "set both KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI for external infrastructure, "
            "or neither"
        )
    mode = os.environ.get("SMVUE_TEST_INFRA", "local")
    if mode == "docker":
        from shared.infra.containers import docker_infrastructure

        with docker_infrastructure() as endpoints:
            yield endpoints
        return
    if mode != "local":
        raise ValueError(f"SMVUE_TEST_INFRA must be local or docker, not {mode!r}")
    with session_home() as home:
        infra = LocalInfra(home / "infra", prefer_default_ports=False)
        try:
            yield infra.up()
        finally:
            infra.down()


@contextlib.contextmanager
def session_home(base: Path | None = None) -> Iterator[Path]:
    """A fresh directory owned by this process, removed (servers stopped) at the end.

    Every LocalInfra started under it, at any depth, is stopped by `reap_abandoned` if
    this process dies without cleaning up.
    """
    base = base or test_infra_base()
    base.mkdir(parents=True, exist_ok=True)
    reap_abandoned(base)
    home = Path(tempfile.mkdtemp(prefix="session-", dir=base)).resolve()
    (home / OWNER_FILE).write_text(f"{os.getpid()}\n")
    try:
        yield home
    finally:
        _stop_all(home)
        shutil.rmtree(home, ignore_errors=True)


def reap_abandoned(base: Path) -> list[Path]:
    """Stops the servers of sessions whose owner process is gone; returns their homes."""
    reaped = []
    for home in sorted(base.glob("session-*")):
        owner = home / OWNER_FILE
        if not owner.exists() and time.time() - home.stat().st_mtime < 60:
            continue  # being created by another session right now
        if read_pid(owner) is not None:
            continue  # a live session (another pytest run in this tree)
        _stop_all(home)
        shutil.rmtree(home, ignore_errors=True)
        reaped.append(home)
    return reaped


def _stop_all(home: Path) -> None:
    for state in home.rglob("infra.json"):
        LocalInfra(state.parent).down()
