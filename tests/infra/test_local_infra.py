"""The local infrastructure launcher: idempotent, restart-safe, usable by any client."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from shared.infra.local import LocalInfra
from shared.infra.processes import kill_hard
from tests.infra.kafka_clients import console_consume, console_produce

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "from shared.cli import main; main()"]


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMVUE_HOME": str(home)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("MONGODB_URI", None)
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def env_lines(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def test_up_is_idempotent_and_works_with_clients_that_are_not_ours(tmp_path: Path) -> None:
    first = cli(tmp_path, "infra", "up")
    try:
        assert first.returncode == 0, first.stderr
        settings = env_lines(first.stdout)
        assert set(settings) == {"KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI"}
        started = time.monotonic()
        again = cli(tmp_path, "infra", "up")
        assert again.returncode == 0 and env_lines(again.stdout) == settings
        assert time.monotonic() - started < 15  # nothing was started the second time
        status = cli(tmp_path, "infra", "status")
        assert "kafka: running" in status.stdout and "mongodb: running" in status.stdout

        # Kafka's own console tools (Java, from the Apache jars) and plain PyMongo.
        bootstrap = settings["KAFKA_BOOTSTRAP_SERVERS"]
        console_produce(bootstrap, "third-party", ["hello", "world"])
        assert console_consume(bootstrap, "third-party", 2) == ["hello", "world"]
        with MongoClient(settings["MONGODB_URI"], serverSelectionTimeoutMS=5000) as client:
            client.thirdparty.things.insert_one({"_id": 1, "name": "x"})
            assert client.thirdparty.things.find_one({"_id": 1}) == {"_id": 1, "name": "x"}
    finally:
        down = cli(tmp_path, "infra", "down")
    assert down.returncode == 0
    assert "kafka: stopped" in cli(tmp_path, "infra", "status").stdout


def test_a_killed_and_restarted_kafka_keeps_its_records(tmp_path: Path) -> None:
    infra = LocalInfra(tmp_path, prefer_default_ports=False)
    endpoints = infra.up()
    try:
        console_produce(endpoints.kafka_bootstrap_servers, "durable", ["one", "two", "three"])
        kill_hard(infra.kafka.pid_file)  # a crash, not a clean stop
        assert not infra.status().kafka_running
        assert infra.up() == endpoints  # same ports, same data
        got = console_consume(endpoints.kafka_bootstrap_servers, "durable", 3)
        assert got == ["one", "two", "three"]
    finally:
        infra.down()
