"""SIGTERM-style shutdown lets in-flight work finish and commits its offset."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from shared.contracts.roster import RosterUpdated
from shared.contracts.topics import ROSTER
from shared.messaging.broker import create_broker
from shared.messaging.consumer import subscribe
from shared.messaging.publisher import KafkaPublisher
from shared.observability.http import create_ops_app
from shared.service import Service, run_service
from tests.fixtures.services import create_topics, free_port, isolated_settings
from tests.foundation.test_messaging_roundtrip import eventually, roster

pytestmark = pytest.mark.integration


async def test_stop_waits_for_the_in_flight_record_and_commits_it(infra: Any) -> None:
    settings = isolated_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri)
    await create_topics(settings, partitions=1)
    started, finished = asyncio.Event(), asyncio.Event()
    handled: list[int] = []

    async def slow(message: RosterUpdated) -> None:
        started.set()
        await asyncio.sleep(1.0)
        handled.append(message.payload.version)
        finished.set()

    def service() -> Service:
        broker = create_broker(settings, "projector")
        subscribe(broker, settings, ROSTER, "projector", slow)
        port = free_port()
        return Service("projector", create_ops_app("projector"), "127.0.0.1", port, broker)

    first = service()
    stop = asyncio.Event()
    task = asyncio.create_task(run_service(first, stop))
    await eventually(lambda: _healthy(first.port))
    await KafkaPublisher(first.broker, settings).publish(roster("m", 1))  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), 30)
    stop.set()  # what SIGTERM does
    await asyncio.wait_for(task, 30)
    assert finished.is_set() and handled == [1]

    # A new instance of the same consumer group must not see the record again.
    second = service()
    stop2 = asyncio.Event()
    task2 = asyncio.create_task(run_service(second, stop2))
    await eventually(lambda: _healthy(second.port))
    await KafkaPublisher(second.broker, settings).publish(roster("m", 2))  # type: ignore[arg-type]
    await eventually(lambda: 2 in handled)
    stop2.set()
    await asyncio.wait_for(task2, 30)
    assert handled == [1, 2]


async def _healthy(port: int) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/healthz")
    except httpx.HTTPError:
        return False
    return response.status_code == 200
