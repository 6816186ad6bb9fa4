"""SecantusDB (the MongoDB wire protocol on WiredTiger), detached on loopback, data kept.

It ships as a Python package (the `local` extra), so it runs from this environment:
`shared/infra/secantus_server.py` is its `secantusd-py` with two fixes (its findAndModify
scanned the whole collection; it read its profiler settings under a global lock before
every command: ADR 0002). An empty config file is passed so a
`~/.secantus/secantusd.toml` on the developer's machine cannot change how the project's
server behaves.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from shared.infra.endpoints import LOCAL_MONGO_OPTIONS
from shared.infra.ports import LOOPBACK, port_open, wait_port_closed
from shared.infra.processes import kill_hard, read_pid, start_detached, stop_process, tail

CACHE_SIZE = "256M"  # WiredTiger cache; its default (1G) is a lot on a shared 24 GiB box


class MongoStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalMongo:
    home: Path  # data, config, log and the pid file live here
    port: int

    @property
    def uri(self) -> str:
        return f"mongodb://{LOOPBACK}:{self.port}/?{LOCAL_MONGO_OPTIONS}"

    @property
    def pid_file(self) -> Path:
        return self.home / "mongo.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "mongo.log"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def pid(self) -> int | None:
        return read_pid(self.pid_file, owner=self.home)

    def start(self, timeout: float = 60.0) -> None:
        """Starts the server detached and returns once it answers `ping`."""
        if not wait_port_closed(self.port):
            raise MongoStartError(
                f"port {self.port} is taken by another process (it was free a moment ago)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.home / "secantusd.toml"
        config.write_text("# Settings are passed as flags by shared/infra/mongo_local.py.\n")
        start_detached(
            [
                *_server(),
                "--config",
                str(config),
                "--host",
                LOOPBACK,
                "--port",
                str(self.port),
                "--storage-path",
                str(self.data_dir),
                "--cache-size",
                CACHE_SIZE,
                "--log-level",
                "WARNING",
                # No replica-set advertisement, so no oplog: nothing here reads one (no
                # change streams, no transactions), and each write costs 20% less (ADR 0002).
                "--standalone",
            ],
            self.log_file,
            self.pid_file,
            self.home,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise MongoStartError(
                    f"SecantusDB exited while starting; log tail:\n{tail(self.log_file)}"
                )
            if port_open(self.port) and self.answers_ping():
                return
            time.sleep(0.2)
        raise MongoStartError(
            f"SecantusDB did not answer on port {self.port} within {timeout:.0f}s; "
            f"log tail:\n{tail(self.log_file)}"
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
        return stop_process(self.pid_file, owner=self.home)

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests)."""
        kill_hard(self.pid_file, owner=self.home)


def _server() -> list[str]:
    """The server's command: `secantusd-py` as `shared/infra/secantus_server.py` runs it."""
    if not (Path(sys.executable).parent / "secantusd-py").exists():
        raise MongoStartError(
            "SecantusDB is not installed in this environment: run `uv sync --extra local`"
        )
    return [sys.executable, "-m", "shared.infra.secantus_server"]
