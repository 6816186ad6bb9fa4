"""`LocalInfra`: the local Kafka + MongoDB pair, idempotent up / down / status.

State lives in `<home>/infra.json` (ports chosen once, pids of the last `up`), so `up`
after `up` returns the running endpoints, and a restart reuses the same ports and data.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.infra.endpoints import InfraEndpoints
from shared.infra.kafka_local import LocalKafka
from shared.infra.mongo_local import LocalMongo
from shared.infra.paths import infra_home
from shared.infra.ports import free_port, wait_port_closed

DEFAULT_KAFKA_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
DEFAULT_MONGO_PORT = 27027
DEFAULT_PORTS = {
    "kafka": DEFAULT_KAFKA_PORT,
    "controller": DEFAULT_CONTROLLER_PORT,
    "mongo": DEFAULT_MONGO_PORT,
}


@dataclass(frozen=True)
class InfraStatus:
    kafka_running: bool
    mongo_running: bool
    endpoints: InfraEndpoints | None  # None before the first `up` (no ports chosen yet)

    @property
    def running(self) -> bool:
        return self.kafka_running and self.mongo_running


class LocalInfra:
    """One Kafka broker and one SecantusDB under `home` (default `$SMVUE_HOME/infra`).

    `prefer_default_ports=False` skips 19092/19093/27027 and takes free ports: for test
    instances that must not collide with a developer's `infra up`.
    """

    def __init__(self, home: Path | None = None, *, prefer_default_ports: bool = True) -> None:
        self.home = (home or infra_home()).resolve()
        self._prefer_defaults = prefer_default_ports

    @property
    def state_file(self) -> Path:
        return self.home / "infra.json"

    @property
    def kafka(self) -> LocalKafka:
        ports = self._ports()
        return LocalKafka(self.home / "kafka", ports["kafka"], ports["controller"])

    @property
    def mongo(self) -> LocalMongo:
        return LocalMongo(self.home / "mongo", self._ports()["mongo"])

    def endpoints(self) -> InfraEndpoints:
        return InfraEndpoints(self.kafka.bootstrap, self.mongo.uri)

    def up(self, timeout: float = 120.0) -> InfraEndpoints:
        """Starts whichever is not running; returns once both answer, with their endpoints.

        A server already running (maybe still starting, from a concurrent `up`) is waited
        for, not started twice: `up` holds a lock on the home while it works.
        """
        with self._locked():
            self._move_off_taken_ports()
            kafka, mongo = self.kafka, self.mongo
            if mongo.pid() is None:
                mongo.start()
            else:
                mongo.wait_ready(timeout)
            if kafka.pid() is None:
                kafka.start(timeout)
            else:
                kafka.wait_ready(timeout)
            self._save(self._ports(), {"kafka": kafka.pid(), "mongo": mongo.pid()})
        return self.endpoints()

    def down(self) -> bool:
        """Stops both; True if anything was running. Data and ports are kept."""
        if not self.state_file.exists():
            return False
        with self._locked():
            stopped_kafka = self.kafka.stop()
            stopped_mongo = self.mongo.stop()
            self._save(self._ports(), {"kafka": None, "mongo": None})
        return stopped_kafka or stopped_mongo

    def status(self) -> InfraStatus:
        if not self.state_file.exists():
            return InfraStatus(False, False, None)
        return InfraStatus(
            self.kafka.pid() is not None, self.mongo.pid() is not None, self.endpoints()
        )

    def _move_off_taken_ports(self) -> None:
        """A stopped server's port taken meanwhile by another program: record a free one.

        The data dirs do not depend on the ports (the one-node KRaft quorum elects itself
        on a new controller port too), so only the printed endpoints change.
        """
        ports = self._ports()
        running = {"kafka": self.kafka.pid(), "mongo": self.mongo.pid()}
        owners = {"kafka": "kafka", "controller": "kafka", "mongo": "mongo"}
        moved = dict(ports)
        for name, server in owners.items():
            if running[server] is None and not wait_port_closed(ports[name], timeout=5):
                moved[name] = free_port(avoid=[p for n, p in moved.items() if n != name])
        if moved != ports:
            self._save(moved, {})

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _ports(self) -> dict[str, int]:
        state = self._load()
        if state is not None:
            return state
        ports: dict[str, int] = {}
        for name, default in DEFAULT_PORTS.items():
            preferred = default if self._prefer_defaults else None
            ports[name] = free_port(preferred, avoid=ports.values())
        self._save(ports, {})
        return ports

    def _load(self) -> dict[str, int] | None:
        try:
            saved = json.loads(self.state_file.read_text())
            ports = saved.get("ports", saved)  # older files held the ports only
            return {name: int(ports[name]) for name in DEFAULT_PORTS}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _save(self, ports: dict[str, int], pids: dict[str, int | None]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ports": ports, "pids": pids}, indent=2) + "\n")
        tmp.replace(self.state_file)
