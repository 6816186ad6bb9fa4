"""SecantusDB (MongoDB wire protocol on WiredTiger), detached on loopback, data kept."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from shared.infra.processes import port_open, start_detached, stop_process, tail


class MongoStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalMongo:
    home: Path
    port: int

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def pid_file(self) -> Path:
        return self.home / "mongo.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "mongo.log"

    def _server(self) -> str:
        candidate = Path(sys.executable).parent / "secantusd-py"
        if not candidate.exists():
            raise MongoStartError(
                "SecantusDB is not installed in this environment: `uv sync --extra local`"
            )
        return str(candidate)

    def start(self, timeout: float = 60.0) -> None:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        start_detached(
            [
                self._server(),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--storage-path",
                str(data),
                "--log-level",
                "WARNING",
            ],
            self.log_file,
            self.pid_file,
            self.home,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open(self.port) and self.answers_ping():
                return
            time.sleep(0.2)
        raise MongoStartError(
            f"SecantusDB did not answer on port {self.port} in {timeout:.0f}s; log tail:\n"
            + tail(self.log_file)
        )

    def answers_ping(self) -> bool:
        client: MongoClient[dict[str, object]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=1000
        )
        try:
            client.admin.command("ping")
        except PyMongoError:
            return False
        finally:
            client.close()
        return True

    def stop(self) -> bool:
        return stop_process(self.pid_file)
