"""`smvue-sync connections` and the syncer's watchdog against the real services, Kafka,
MongoDB and the Graph emulator: a stuck import is relaunched once (metric + audit), a
relaunched one still stuck is listed by `--stale` and not relaunched again, a resync runs
a full round, and a paused connection is explained in the help page's words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from shared.contracts.connections import connection_id_for
from shared.contracts.topics import AUDIT
from shared.contracts.user_errors import UserErrorCode, user_message
from shared.infra.endpoints import InfraEndpoints
from tests.operators.conftest import Doc, cli, eventually, read_topic
from tests.sync.conftest import running_world
from tests.sync.test_notifications import connected
from tests.sync.world import World

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]
CID = connection_id_for("ann")


@pytest.fixture
async def world(infra: InfraEndpoints) -> AsyncIterator[World]:
    async with running_world(infra, writer=False) as world:
        yield world


async def sync_state(world: World) -> Doc:
    (state,) = await world.mongo_docs("sync_state", {"_id": CID})
    return state


async def set_state(world: World, **fields: object) -> None:
    mongo: AsyncMongoClient[Doc] = AsyncMongoClient(world.settings.mongodb_uri, tz_aware=True)
    try:
        await mongo[world.settings.mongodb_database].sync_state.update_one(
            {"_id": CID}, {"$set": fields}
        )
    finally:
        await mongo.close()


def relaunches() -> float:
    value = REGISTRY.get_sample_value(
        "smvue_syncer_watchdog_relaunches_total", {"reason": "import_stuck"}
    )
    return value or 0.0


async def test_a_stuck_import_is_relaunched_once_and_listed_stale(world: World) -> None:
    await connected(world)
    first = await eventually(lambda: sync_state(world), lambda s: bool(s.get("last_round_at")))
    before = relaunches()
    # An import asked for two hours ago, held by an instance that vanished (its lease runs
    # another hour): nothing would happen for an hour without the watchdog.
    now = datetime.now(UTC)
    stuck = {
        "pending.connect": now - timedelta(hours=2),
        "has_pending": True,
        "lease_owner": "syncer-gone",
        "lease_until": now + timedelta(hours=1),
    }
    await set_state(world, **stuck)
    state = await eventually(
        lambda: sync_state(world),
        lambda s: (
            "connect" not in (s.get("pending") or {})
            and s["last_round_at"] > first["last_round_at"]
        ),
        timeout=30,
    )
    assert state["watchdog_reason"] == "import_stuck"
    assert relaunches() == before + 1
    audits = [
        r["payload"]
        for r in await read_topic(world.settings, world.settings.topic(AUDIT))
        if r["payload"]["operation"] == "sync.relaunched"
    ]
    assert [(a["connection_id"], a["detail"].split(" ")[0]) for a in audits] == [
        (CID, "import_stuck")
    ]

    # An operator's resync: a full round follows.
    resync = await cli(world.settings, "connections", "resync", "ann", "--json")
    assert resync.exit_code == 0 and resync.json() == [{"user_id": "ann", "outcome": "requested"}]
    await eventually(
        lambda: sync_state(world),
        lambda s: s["last_round_at"] > state["last_round_at"] and not s.get("pending"),
    )

    # Stuck again with no successful round since its relaunch: not relaunched twice, listed.
    now = datetime.now(UTC)
    await set_state(
        world, **stuck, watchdog_relaunched_at=now, last_round_at=now - timedelta(hours=1)
    )
    await world.control("GET", "/subscriptions")  # a few ticks pass meanwhile
    listed = await cli(world.settings, "connections", "list", "--stale", "--json")
    assert listed.exit_code == 1
    [row] = listed.json()
    assert (row["user_id"], row["stale"], row["stage"]) == ("ann", "import_stuck", "importing")
    assert row["watchdog_relaunched_at"] is not None
    importing = await cli(world.settings, "connections", "list", "--state", "importing", "--json")
    assert [r["user_id"] for r in importing.json()] == ["ann"]
    assert relaunches() == before + 1
    assert "connect" in (await sync_state(world))["pending"]


async def test_show_explains_a_paused_connection_in_the_help_pages_words(world: World) -> None:
    await connected(world)
    await world.control("POST", f"/users/{world.cloud.manager.id}/revoke-refresh-tokens", json={})
    await world.control("POST", "/clock/advance", json={"hours": 3})  # access token expired
    await world.sync_now("ann")

    async def paused() -> list[Doc]:
        return list(
            (await cli(world.settings, "connections", "list", "--state", "paused", "--json")).json()
        )

    await eventually(paused, lambda rows: [r["user_id"] for r in rows] == ["ann"], timeout=30)
    shown = await cli(world.settings, "connections", "show", "ann", "--json")
    assert shown.exit_code == 0
    view = shown.json()
    assert (view["status"], view["stage"]) == ("paused", "paused")
    assert user_message(UserErrorCode.REAUTHORIZATION_REQUIRED) in view["explanation"]
    assert view["last_error"]["code"] == "reauthorization_required"
    assert view["granted_scopes"] and "token" not in shown.stdout.lower().replace("tokens", "")
    assert view["meetings"] == {"live": 0, "removed": 0}
    table = await cli(world.settings, "connections", "show", "ann")
    assert "needs to be reconnected" in " ".join(table.stdout.split())
    refused = await cli(world.settings, "connections", "resync", "ann")
    assert refused.exit_code == 4
    assert (await cli(world.settings, "connections", "show", "nobody")).exit_code == 3
