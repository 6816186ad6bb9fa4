"""The sync pipeline's world: emulator (as Outlook) over HTTPS, real Kafka and MongoDB, and
all four services (ingress, syncer, projector, writer) running in-process with production
wiring."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient

from services.syncer.app import build_service as build_syncer
from services.syncer.settings import SyncerSettings
from shared.infra.endpoints import InfraEndpoints
from tests.fixtures.connect import connected_settings, seed_cloud, with_app
from tests.fixtures.emulator import running_emulator
from tests.fixtures.services import build, create_topics, running
from tests.sync.world import World

FAST_SYNCER = SyncerSettings(
    tick_seconds=0.5,
    reconcile_seconds=3600,
    retry_base_seconds=0.2,
    retry_max_seconds=2.0,
    page_size=5,  # several pages per round, as with a busy calendar
)


@contextlib.asynccontextmanager
async def running_world(infra: InfraEndpoints, *, writer: bool = True) -> AsyncIterator[World]:
    """The world, with or without a writer (writer tests start and kill their own)."""
    async with running_emulator() as emulator:
        delivery = emulator.state.subscriptions.settings
        delivery.batch_window_seconds = 0.05
        delivery.retry_base_seconds = 0.05
        settings = connected_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri, emulator)
        cloud = seed_cloud(emulator, settings.oauth_redirect_uri)
        settings = with_app(settings, cloud)
        await create_topics(settings, partitions=2)
        async with contextlib.AsyncExitStack() as services:
            await services.enter_async_context(running(build("ingress", settings)))
            await services.enter_async_context(running(build_syncer(settings, FAST_SYNCER)))
            await services.enter_async_context(running(build("projector", settings)))
            if writer:
                await services.enter_async_context(running(build("writer", settings)))
            yield World(emulator, settings, cloud)
        mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongodb_uri)
        await mongo.drop_database(settings.mongodb_database)
        await mongo.close()


@pytest.fixture
async def world(infra: InfraEndpoints) -> AsyncIterator[World]:
    async with running_world(infra) as world:
        yield world
