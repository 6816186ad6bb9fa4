"""The ingress answers 503 + Retry-After, never 500, while MongoDB or Kafka is out (issue 10,
long chaos run: command submissions were answered 500 during a MongoDB or Kafka outage).

A transient infrastructure failure (`shared.messaging.failures.is_transient`) escaping any
route is mapped in one place (`shared.observability.http.TransientFailuresAre503`): the
caller retries with the same command id. Real ingress and Kafka; MongoDB is the real server
behind a TCP proxy the test cuts (the shared server itself is never paused); the Kafka
outage is the project's `FlakyPublisher` on the ingress's publisher port.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from shared.infra.endpoints import InfraEndpoints
from shared.settings import Settings
from tests.fixtures.cluster import RoundRobin
from tests.fixtures.connect import SERVICE_TOKEN
from tests.fixtures.faults import FlakyPublisher
from tests.fixtures.services import build, create_topics, isolated_settings, running

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}


def ingress_settings(kafka: str, mongodb_uri: str) -> Settings:
    return isolated_settings(
        kafka,
        mongodb_uri,
        service_tokens=[SERVICE_TOKEN],
        token_keys={"k1": base64.b64encode(os.urandom(32)).decode()},
        token_active_key_id="k1",
    )


def schedule_body(command_id: str) -> dict[str, object]:
    return {
        "command_id": command_id,
        "manager_id": "manager-outage",
        "member_name": "Ada",
        "member_email": "ada@example.com",
        "start": (datetime.now(UTC) + timedelta(days=3)).replace(tzinfo=None).isoformat(),
        "time_zone": "Europe/Paris",
        "meeting_type": "30min",
        "prep_url": "https://smvue.example/prep/1",
    }


def assert_retry_later(response: httpx.Response, what: str) -> None:
    assert response.status_code == 503, (what, response.status_code, response.text)
    assert int(response.headers["Retry-After"]) >= 1, what
    assert response.json()["detail"]["code"] == "temporarily_unavailable", what


async def test_a_mongodb_outage_is_503_with_retry_after_then_recovers(
    infra: InfraEndpoints,
) -> None:
    mongo = urlsplit(infra.mongodb_uri)
    proxy = RoundRobin()
    proxy.backends = [int(mongo.port or 27017)]
    proxy_port = await proxy.start()
    try:
        settings = ingress_settings(
            infra.kafka_bootstrap_servers,
            f"mongodb://127.0.0.1:{proxy_port}/?directConnection=true",
        )
        await create_topics(settings, partitions=1)
        async with (
            running(build("ingress", settings)),
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{settings.ingress_port}", headers=AUTH, timeout=60
            ) as client,
        ):
            first = await client.get(f"/v1/commands/{uuid.uuid4().hex}")
            assert first.status_code == 404, first.text  # up: Mongo answers

            proxy.backends = [_closed_port()]  # MongoDB unreachable, open connections cut
            await proxy.sever()
            calls: dict[str, Awaitable[httpx.Response]] = {
                "schedule": client.post(
                    "/v1/commands/schedule", json=schedule_body(uuid.uuid4().hex)
                ),
                "status": client.get(f"/v1/commands/{uuid.uuid4().hex}"),
                "disconnect": client.post("/v1/connections/someone/disconnect"),
                "roster": client.get("/v1/managers/manager-outage/roster"),
            }
            answers = await asyncio.gather(*calls.values())  # in parallel: one timeout's wait
            for what, answer in zip(calls, answers, strict=True):
                assert_retry_later(answer, what)

            proxy.backends = [int(mongo.port or 27017)]  # back
            again = await client.post("/v1/commands/schedule", json=schedule_body("c" * 16))
            assert again.status_code == 409, again.text  # a real answer: not connected
            status = await client.get(f"/v1/commands/{uuid.uuid4().hex}")
            assert status.status_code == 404, status.text
    finally:
        await proxy.stop()


async def test_a_kafka_outage_is_503_with_retry_after_then_the_retry_is_accepted(
    infra: InfraEndpoints,
) -> None:
    settings = ingress_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri)
    await create_topics(settings, partitions=1)
    ingress = build("ingress", settings)
    commands = ingress.http_app.state.commands
    flaky = FlakyPublisher(commands._publisher, times=1)  # the broker doesn't acknowledge
    commands._publisher = flaky
    ada = {"member_id": "ada", "email": "ada@example.com", "display_name": "Ada"}
    roster = {"members": [ada], "version": 1}
    async with (
        running(ingress),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.ingress_port}", headers=AUTH, timeout=30
        ) as client,
    ):
        failed = await client.put("/v1/managers/m-kafka/roster", json=roster)
        assert_retry_later(failed, "roster")
        assert flaky.failed, "the publish was attempted and failed"
        retried = await client.put("/v1/managers/m-kafka/roster", json=roster)
        assert retried.status_code == 202, retried.text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
