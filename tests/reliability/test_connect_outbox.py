"""The OAuth callback stored the tokens and the connection, then the `connection.connected`
publish failed: the import must still happen (issue 10, item 2 — the registry's outbox,
drained by the ingress). Emulator, real Kafka and MongoDB, real services; only the
ingress's publisher is wrapped to fail once (tests/fixtures/faults.py)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest

from services.syncer.app import build_service as build_syncer
from shared.connections.events import ConnectionEvents
from shared.contracts.connections import ConnectionConnected
from shared.contracts.topics import CONNECTIONS
from shared.infra.endpoints import InfraEndpoints
from tests.fixtures.connect import connect_user, connected_settings, seed_cloud, with_app
from tests.fixtures.emulator import running_emulator
from tests.fixtures.faults import FlakyPublisher, of_type
from tests.fixtures.kafka import TopicReader
from tests.fixtures.services import build, create_topics, running
from tests.sync.conftest import FAST_SYNCER
from tests.sync.world import World, event

pytestmark = pytest.mark.integration


async def test_a_connect_whose_event_publish_failed_still_imports(
    infra: InfraEndpoints,
) -> None:
    async with running_emulator() as emulator:
        settings = connected_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri, emulator)
        cloud = seed_cloud(emulator, settings.oauth_redirect_uri)
        settings = with_app(settings, cloud)
        await create_topics(settings, partitions=2)
        world = World(emulator, settings, cloud)
        ingress = build("ingress", settings)
        connect = ingress.http_app.state.connect
        flaky = FlakyPublisher(connect.events._publisher, when=of_type(ConnectionConnected))
        connect.events = ConnectionEvents(flaky, ingress.http_app.state.audit)
        connect.outbox_grace_seconds = 0.5
        connect.outbox_every_seconds = 0.2
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(running(ingress))
            await stack.enter_async_context(running(build_syncer(settings, FAST_SYNCER)))
            await stack.enter_async_context(running(build("projector", settings)))
            reader = await stack.enter_async_context(TopicReader(settings, CONNECTIONS))
            await world.roster("ann", cloud.member.mail, version=1)
            start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0)
            await world.as_user(
                "POST",
                "/me/events",
                cloud.manager.id,
                json=event("Ann / Bob", start, [cloud.member.mail], "m"),
            )

            result = await connect_user(emulator, settings, "ann", cloud.manager.mail)

            assert result.status == "connected"  # stored: the person is connected
            assert flaky.failed, "the fault was not injected"
            docs = await world.wait_read_model("ann", lambda d: len(d) == 1, timeout=30)
            assert [d["subject"] for d in docs] == ["Ann / Bob"]
            await reader.wait_for(lambda m: any(isinstance(x, ConnectionConnected) for x in m))
            registry = await world.mongo_docs("connection_registry")
            assert [d.get("outbox") for d in registry] == [None]  # delivered and cleared
