"""Kafka's own console producer/consumer (Apache's Java tools), as a client that is not ours."""

from __future__ import annotations

import shutil
import subprocess

from shared.infra.kafka_jars import fetch_jars


def _tool(main_class: str, *args: str, stdin: str | None = None) -> str:
    java = shutil.which("java")
    assert java is not None
    result = subprocess.run(
        [java, "-Xmx256m", "-cp", f"{fetch_jars()}/*", main_class, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def create_topic(bootstrap: str, topic: str) -> None:
    _tool(
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--if-not-exists",
        "--topic",
        topic,
        "--partitions",
        "1",
    )


def console_produce(bootstrap: str, topic: str, lines: list[str]) -> None:
    create_topic(bootstrap, topic)
    _tool(
        "org.apache.kafka.tools.ConsoleProducer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--producer-property",
        "acks=all",
        stdin="\n".join(lines) + "\n",
    )


def console_consume(bootstrap: str, topic: str, count: int) -> list[str]:
    out = _tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        str(count),
        "--timeout-ms",
        "30000",
    )
    return [line for line in out.splitlines() if line]
