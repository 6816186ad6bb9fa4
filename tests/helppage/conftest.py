"""The help page's world: the emulator as Microsoft's cloud, real Kafka and MongoDB, and
all four services with production wiring (tests/sync/conftest.py), plus helpers to act as
the SMVue backend on the ingress's and projector's HTTP APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.infra.endpoints import InfraEndpoints
from tests.fixtures.connect import SERVICE_TOKEN
from tests.fixtures.waiting import eventually
from tests.sync.conftest import running_world
from tests.sync.world import World


@pytest.fixture
async def world(infra: InfraEndpoints) -> AsyncIterator[World]:
    async with running_world(infra) as world:
        yield world


def ingress(world: World) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{world.settings.ingress_port}",
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    )


def projector(world: World) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{world.settings.projector_port}",
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    )


async def command_status(world: World, command_id: str) -> dict[str, Any]:
    async with ingress(world) as api:
        answer = await api.get(f"/v1/commands/{command_id}")
    return {"http": answer.status_code, **(answer.json() if answer.status_code == 200 else {})}


async def final_status(world: World, command_id: str, timeout: float = 30) -> dict[str, Any]:
    """Waits until the command reached succeeded or failed; returns its status document."""
    return await eventually(
        lambda: command_status(world, command_id),
        lambda s: s.get("state") in ("succeeded", "failed"),
        timeout=timeout,
    )


async def card(world: World, user_id: str) -> dict[str, Any]:
    """The Integrations card as the projector's API answers it."""
    async with projector(world) as api:
        answer = await api.get(f"/v1/connections/{user_id}")
    return {"http": answer.status_code, **(answer.json() if answer.status_code == 200 else {})}
