"""A change made while the initial import is creating the subscription is not lost
(issue 10): Graph notifies only changes after the subscription exists, and the import's
delta round ran before, so the syncer runs one more delta round once subscribed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.infra.endpoints import InfraEndpoints
from tests.fixtures.connect import connect_user
from tests.sync.conftest import running_world
from tests.sync.world import event, subjects

pytestmark = pytest.mark.integration


async def test_a_change_before_the_subscription_exists_reaches_the_read_model(
    infra: InfraEndpoints,
) -> None:
    async with running_world(infra, writer=False) as world:
        ann, bob = world.cloud.manager, world.cloud.member
        # Creating the subscription takes 4 s (before Graph's handler runs): the import's
        # delta is done by then, and the subscription doesn't exist yet.
        slow = await world.control(
            "POST",
            "/faults",
            json={"path_regex": "/subscriptions$", "method": "POST", "status": None,
                  "latency_ms": 4000, "count": 1},
        )  # fmt: skip
        await world.roster("ann", bob.mail, version=1)
        connecting = asyncio.create_task(
            connect_user(world.emulator, world.settings, "ann", ann.mail)
        )

        async def subscribing() -> bool:  # the create arrived (and waits its 4 s)
            faults = await world.control("GET", "/faults")
            return any(f["id"] == slow["id"] and f["hits"] for f in faults)

        for _ in range(300):
            if await subscribing():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the syncer never created the subscription")
        soon = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        await world.as_user(
            "POST", "/me/events", ann.id, json=event("in the gap", soon, [bob.mail], "g")
        )
        assert not await world.subscriptions()  # made while not subscribed yet
        assert (await connecting).status == "connected"
        await world.wait_read_model("ann", lambda d: subjects(d) == ["in the gap"])
