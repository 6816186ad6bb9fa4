"""The local infrastructure launcher: idempotent, restart-safe, usable by any client."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import MongoClient

from shared.infra.local import LocalInfra
from tests.infra.kafka_clients import console_consume, console_produce, create_topic

pytestmark = pytest.mark.integration

SMVUE_SYNC = str(Path(sys.executable).parent / "smvue-sync")  # the installed console script


def cli_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "SMVUE_HOME": str(home)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("MONGODB_URI", None)
    return env


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SMVUE_SYNC, *args],
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def env_lines(stdout: str) -> dict[str, str]:
    return dict(shlex.split(line)[0].split("=", 1) for line in stdout.splitlines())


def test_up_is_idempotent_and_down_stops_both(own_home: Path) -> None:
    try:
        racing = [
            subprocess.Popen(
                [SMVUE_SYNC, "infra", "up"],
                env=cli_env(own_home),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [process.communicate(timeout=240) for process in racing]
        assert [process.returncode for process in racing] == [0, 0], outputs
        assert outputs[0][0] == outputs[1][0]  # two concurrent `up`s: one pair of servers
        settings = env_lines(outputs[0][0])  # stdout is nothing but the env lines
        assert set(settings) == {"KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI"}
        assert settings["KAFKA_BOOTSTRAP_SERVERS"].startswith("127.0.0.1:")
        assert settings["MONGODB_URI"].startswith("mongodb://127.0.0.1:")
        assert settings["MONGODB_URI"].endswith("/?directConnection=true&retryWrites=false")
        pids = LocalInfra(own_home / "infra").status()

        started = time.monotonic()
        again = cli(own_home, "infra", "up")
        assert again.returncode == 0, again.stderr
        assert env_lines(again.stdout) == settings
        assert time.monotonic() - started < 20  # nothing was started the second time
        assert LocalInfra(own_home / "infra").status() == pids

        status = cli(own_home, "infra", "status").stdout
        assert "kafka: running" in status and "mongodb: running" in status
    finally:
        down = cli(own_home, "infra", "down")
    assert down.returncode == 0, down.stderr
    status = cli(own_home, "infra", "status").stdout
    assert "kafka: stopped" in status and "mongodb: stopped" in status
    assert not LocalInfra(own_home / "infra").status().running


def test_eval_of_up_serves_clients_that_are_not_ours(own_home: Path, unique_name: str) -> None:
    """`eval "$(smvue-sync infra up)"`, then Apache's console tools and plain PyMongo."""
    try:
        shell = subprocess.run(
            [
                "bash",
                "-c",
                'set -euo pipefail; eval "$("$SMVUE_SYNC" infra up)"; '
                'echo "$KAFKA_BOOTSTRAP_SERVERS"; echo "$MONGODB_URI"',
            ],
            env={**cli_env(own_home), "SMVUE_SYNC": SMVUE_SYNC},
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert shell.returncode == 0, shell.stderr
        bootstrap, mongodb_uri = shell.stdout.split()

        console_produce(bootstrap, unique_name, ["hello", "world"])
        assert console_consume(bootstrap, unique_name, 2) == ["hello", "world"]

        with MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
            client.thirdparty.things.insert_one({"_id": 1, "name": "x"})
            assert client.thirdparty.things.find_one({"_id": 1}) == {"_id": 1, "name": "x"}
    finally:
        cli(own_home, "infra", "down")


def test_a_killed_and_restarted_kafka_keeps_its_records(own_home: Path, unique_name: str) -> None:
    infra = LocalInfra(own_home / "infra", prefer_default_ports=False)
    endpoints = infra.up()
    bootstrap = endpoints.kafka_bootstrap_servers
    records = [f"record-{i}".encode() for i in range(50)]
    try:
        create_topic(bootstrap, unique_name)
        asyncio.run(_produce_acked(bootstrap, unique_name, records))

        infra.kafka.kill()  # SIGKILL: a crash, not a clean shutdown
        assert not infra.status().kafka_running
        restarted = time.monotonic()
        assert infra.up() == endpoints  # same ports, same data dir
        print(f"kafka restart after SIGKILL: {time.monotonic() - restarted:.1f}s")

        assert asyncio.run(_consume_all(bootstrap, unique_name, len(records))) == records
    finally:
        infra.down()


async def _produce_acked(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _consume_all(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    got: list[bytes] = []
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        async with asyncio.timeout(60):
            while len(got) < count:
                batch = await consumer.getmany(partition, timeout_ms=1000)
                got.extend(record.value or b"" for record in batch.get(partition, []))
    finally:
        await consumer.stop()
    return got
