"""A one-node Apache Kafka 4 broker in KRaft mode, on loopback, with a kept data dir.

Storage is formatted on first start only; later starts reuse the log dirs, so records
written before a restart (or a crash) are still there. The heap is bounded for a
2-core / 24 GiB machine.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from shared.infra.kafka_jars import fetch_jars
from shared.infra.processes import port_open, start_detached, stop_process, tail

JVM_OPTS = [
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]


class KafkaStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalKafka:
    home: Path  # data, config, log and pid live here
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def properties(self) -> str:
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={self.data_dir}",
                "num.partitions=1",
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "log.flush.interval.ms=1000",
                "num.network.threads=2",
                "num.io.threads=4",
                "log.cleaner.dedupe.buffer.size=33554432",
                "",
            ]
        )

    def _classpath(self) -> str:
        return f"{fetch_jars()}/*"

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise KafkaStartError("Java 17+ (`java`) is needed to run the local Kafka broker")
        return java

    def _format_once(self, config: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = _kafka_uuid()
        result = subprocess.run(  # noqa: S603 (fixed argv)
            [
                self._java(),
                "-Xmx256m",
                "-cp",
                self._classpath(),
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(config),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise KafkaStartError(
                f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}"
            )

    def start(self, timeout: float = 90.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        config.write_text(self.properties())
        log4j = self.home / "log4j2.properties"
        log4j.write_text(_LOG4J)
        self._format_once(config)
        start_detached(
            [
                self._java(),
                *JVM_OPTS,
                f"-Dlog4j2.configurationFile={log4j}",
                f"-Dkafka.logs.dir={self.home}",
                "-cp",
                self._classpath(),
                "kafka.Kafka",
                str(config),
            ],
            self.log_file,
            self.pid_file,
            self.home,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open(self.port) and asyncio.run(_answers_metadata(self.bootstrap)):
                return
            time.sleep(0.5)
        raise KafkaStartError(
            f"Kafka did not become ready on {self.bootstrap} in {timeout:.0f}s; log tail:\n"
            + tail(self.log_file)
        )

    def stop(self) -> bool:
        return stop_process(self.pid_file, timeout=60)


async def _answers_metadata(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.list_topics()
    except Exception:
        return False
    finally:
        await admin.close()
    return True


def _kafka_uuid() -> str:
    """Kafka's cluster id format: a random UUID in URL-safe base64 without padding."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


_LOG4J = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""
