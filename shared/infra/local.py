"""`LocalInfra`: the local Kafka + MongoDB pair, idempotent up / down / status.

The chosen ports are kept in `<home>/infra.json`, so `up` after `up` returns the running
endpoints, and a restart reuses the same ports and data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shared.infra.endpoints import InfraEndpoints
from shared.infra.kafka_local import LocalKafka
from shared.infra.mongo_local import LocalMongo
from shared.infra.paths import infra_home
from shared.infra.processes import free_port, read_pid

DEFAULT_KAFKA_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
DEFAULT_MONGO_PORT = 27027


@dataclass(frozen=True)
class InfraStatus:
    kafka_running: bool
    mongo_running: bool
    endpoints: InfraEndpoints | None

    @property
    def running(self) -> bool:
        return self.kafka_running and self.mongo_running


class LocalInfra:
    def __init__(self, home: Path | None = None, *, prefer_default_ports: bool = True) -> None:
        self.home = home or infra_home()
        self._prefer_defaults = prefer_default_ports

    @property
    def _state_file(self) -> Path:
        return self.home / "infra.json"

    def _ports(self) -> dict[str, int]:
        if self._state_file.exists():
            saved: dict[str, int] = json.loads(self._state_file.read_text())
            return saved
        prefer = self._prefer_defaults
        ports = {
            "kafka": free_port(DEFAULT_KAFKA_PORT if prefer else None),
            "controller": free_port(DEFAULT_CONTROLLER_PORT if prefer else None),
            "mongo": free_port(DEFAULT_MONGO_PORT if prefer else None),
        }
        self.home.mkdir(parents=True, exist_ok=True)
        self._state_file.write_text(json.dumps(ports))
        return ports

    @property
    def kafka(self) -> LocalKafka:
        ports = self._ports()
        return LocalKafka(self.home / "kafka", ports["kafka"], ports["controller"])

    @property
    def mongo(self) -> LocalMongo:
        return LocalMongo(self.home / "mongo", self._ports()["mongo"])

    def endpoints(self) -> InfraEndpoints:
        return InfraEndpoints(self.kafka.bootstrap, self.mongo.uri)

    def up(self) -> InfraEndpoints:
        """Starts what is not running; returns the endpoints either way."""
        kafka, mongo = self.kafka, self.mongo
        if read_pid(mongo.pid_file) is None:
            mongo.start()
        if read_pid(kafka.pid_file) is None:
            kafka.start()
        return self.endpoints()

    def down(self) -> bool:
        """Stops both; True if anything was running. Data is kept."""
        stopped_kafka = self.kafka.stop()
        stopped_mongo = self.mongo.stop()
        return stopped_kafka or stopped_mongo

    def status(self) -> InfraStatus:
        if not self._state_file.exists():
            return InfraStatus(False, False, None)
        kafka_up = read_pid(self.kafka.pid_file) is not None
        mongo_up = read_pid(self.mongo.pid_file) is not None
        return InfraStatus(kafka_up, mongo_up, self.endpoints())
