"""The writer's world: the sync world (emulator as Outlook, real Kafka and MongoDB, ingress,
syncer, projector) without a writer — each test runs (or kills) its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.infra.endpoints import InfraEndpoints
from tests.sync.conftest import running_world
from tests.sync.world import World


@pytest.fixture
async def world(infra: InfraEndpoints) -> AsyncIterator[World]:
    async with running_world(infra, writer=False) as world:
        yield world
