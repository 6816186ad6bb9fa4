"""Nothing Graph delivered is lost at the ingress (issue 10, item 3).

A notification whose subscription the ingress can't verify (the directory lags behind the
syncer's activation, or its follower died) is answered 503 + Retry-After so Graph delivers
it again — never 202 and dropped. Items of a subscription the directory saw end are
dropped (202). The follower is supervised: readiness is false while it is down, and it
comes back by itself. Real ingress, Kafka and MongoDB.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.ingress.notifications.directory import SubscriptionDirectory
from shared.contracts.notifications import GraphChangeNotified
from shared.contracts.subscriptions import (
    SubscriptionActivated,
    SubscriptionEnded,
    SubscriptionInfo,
)
from shared.contracts.topics import NOTIFICATIONS
from shared.infra.endpoints import InfraEndpoints
from shared.messaging.broker import create_broker
from shared.messaging.publisher import KafkaPublisher
from shared.settings import Settings
from tests.fixtures.kafka import TopicReader
from tests.fixtures.services import build, create_topics, isolated_settings, running

pytestmark = pytest.mark.integration

SECRET = "client-state-secret"


def info(subscription_id: str, connection_id: str) -> SubscriptionInfo:
    return SubscriptionInfo(
        subscription_id=subscription_id,
        connection_id=connection_id,
        resource="me/events",
        expires_at=datetime.now(UTC) + timedelta(days=2),
        client_state_sha256=hashlib.sha256(SECRET.encode()).hexdigest(),
    )


def notification(subscription_id: str, event_id: str) -> dict[str, Any]:
    return {
        "value": [
            {
                "subscriptionId": subscription_id,
                "changeType": "updated",
                "resource": f"Users/u/Events/{event_id}",
                "resourceData": {"id": event_id},
                "clientState": SECRET,
                "tenantId": "t",
            }
        ]
    }


async def publish(settings: Settings, *envelopes: Any) -> None:
    broker = create_broker(settings, "test-syncer")
    await broker.start()
    try:
        await KafkaPublisher(broker, settings).publish_all(list(envelopes))
    finally:
        await broker.stop()


async def test_unverifiable_notifications_are_delivered_again_not_dropped(
    infra: InfraEndpoints,
) -> None:
    settings = isolated_settings(
        infra.kafka_bootstrap_servers,
        infra.mongodb_uri,
        token_keys={"k1": base64.b64encode(os.urandom(32)).decode()},
        token_active_key_id="k1",
    )
    await create_topics(settings, partitions=2)
    live, gone, late = (f"sub-{n}-{uuid.uuid4().hex[:6]}" for n in ("live", "gone", "late"))
    await publish(
        settings,
        SubscriptionActivated.build(key="conn-a", payload=info(live, "conn-a")),
        SubscriptionActivated.build(key="conn-b", payload=info(gone, "conn-b")),
        SubscriptionEnded.build(key="conn-b", payload=info(gone, "conn-b")),
    )
    async with (
        running(build("ingress", settings)),
        TopicReader(settings, NOTIFICATIONS) as reader,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.ingress_port}") as client,
    ):
        for _ in range(100):  # the directory loads the topic first
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert (
            await client.post("/graph/notifications", json=notification(live, "e1"))
        ).status_code == 202

        # Not (yet) known to this instance: Graph must deliver it again.
        first = await client.post("/graph/notifications", json=notification(late, "e2"))
        assert first.status_code == 503, first.text
        assert first.headers["retry-after"]
        # Seen ended: dropped for good (202), nothing published.
        assert (
            await client.post("/graph/notifications", json=notification(gone, "e3"))
        ).status_code == 202

        # The activation arrives; Graph's redelivery is now accepted and published.
        await publish(
            settings, SubscriptionActivated.build(key="conn-c", payload=info(late, "conn-c"))
        )
        again = await client.post("/graph/notifications", json=notification(late, "e2"))
        assert again.status_code == 202, again.text

        def resources(messages: list[Any]) -> list[str | None]:
            return sorted(
                m.payload.resource_id for m in messages if isinstance(m, GraphChangeNotified)
            )

        await reader.wait_for(lambda m: resources(m) == ["e1", "e2"])
        await asyncio.sleep(0.5)
        await reader.poll()
        assert resources(reader.messages) == ["e1", "e2"]  # e3 (ended) never published


class FailingOnce(SubscriptionDirectory):
    """A directory whose first follower catches up, then dies when told to."""

    def __init__(self) -> None:
        super().__init__()
        self.die = asyncio.Event()
        self.runs = 0

    async def follow(self, settings: Settings) -> None:
        self.runs += 1
        self._following = True
        self._ready.set()
        if self.runs == 1:
            await self.die.wait()
            raise ConnectionError("broker connection lost")
        await asyncio.Event().wait()  # the restarted follower keeps following


async def test_the_directory_follower_is_supervised_and_readiness_follows_it() -> None:
    directory = FailingOnce()
    task = asyncio.create_task(directory.run(Settings(), restart_seconds=0.2))
    try:
        for _ in range(50):
            if directory.ready:
                break
            await asyncio.sleep(0.01)
        assert directory.ready
        directory.die.set()
        for _ in range(50):
            if not directory.ready:
                break
            await asyncio.sleep(0.01)
        assert not directory.ready  # down: not ready (the webhook answers 503)
        for _ in range(100):
            if directory.ready:
                break
            await asyncio.sleep(0.02)
        assert directory.ready and directory.runs == 2 and directory.restarts == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
