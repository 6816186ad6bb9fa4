"""Every command the API accepts reaches `succeeded` or `failed` (with a user code): Sync
Now and disconnect included (issue 9 item 2)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts.commands import ConnectionCommandRequest, SyncNow
from shared.contracts.connections import connection_id_for
from tests.fixtures.connect import connect_user
from tests.helppage.conftest import final_status, ingress
from tests.sync.world import World, event

pytestmark = pytest.mark.integration


def new_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


async def test_sync_now_and_disconnect_reach_a_final_state(world: World) -> None:
    bob = world.cloud.member
    await world.roster("ann", bob.mail, version=1)
    outcome = await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    assert outcome.status == "connected"
    await world.as_user(
        "POST",
        "/me/events",
        world.cloud.manager.id,
        json=event("1:1 Ann/Bob", datetime.now(UTC) + timedelta(days=2), [bob.mail], "m1"),
    )

    sync_id = new_id("sync")
    async with ingress(world) as api:
        accepted = await api.post(
            "/v1/commands/sync-now", json={"command_id": sync_id, "user_id": "ann"}
        )
    assert accepted.status_code == 202, accepted.text
    done = await final_status(world, sync_id)
    assert (done["state"], done["kind"]) == ("succeeded", "sync_now")
    # The round it answered for imported the meeting made just before it.
    assert [m["subject"] for m in await world.one_on_ones("ann")] == ["1:1 Ann/Bob"]

    async with ingress(world) as api:
        answer = await api.post("/v1/connections/ann/disconnect")
    assert answer.status_code == 202, answer.text
    disconnect_id = answer.json()["command_id"]
    assert answer.json()["status_url"] == f"/v1/commands/{disconnect_id}"
    done = await final_status(world, disconnect_id)
    assert (done["state"], done["kind"]) == ("succeeded", "disconnect")

    # Sync Now of a disconnected calendar: refused at the edge...
    async with ingress(world) as api:
        refused = await api.post(
            "/v1/commands/sync-now", json={"command_id": new_id("late"), "user_id": "ann"}
        )
    assert refused.status_code == 409
    assert refused.json()["detail"]["code"] == "calendar_not_connected"
    # ...and, produced straight onto Kafka by the backend, answered as failed.
    late = new_id("kafka")
    await world.publish(
        SyncNow.build(
            key=connection_id_for("ann"),
            payload=ConnectionCommandRequest(
                command_id=late, user_id="ann", requested_at=datetime.now(UTC)
            ),
        )
    )
    done = await final_status(world, late)
    assert done["state"] == "failed"
    assert done["failure"]["code"] == "calendar_not_connected"
    assert done["failure"]["message"] == "Outlook Calendar is not connected"


async def test_sync_now_of_a_paused_connection_fails_with_reconnect(world: World) -> None:
    await world.roster("ann", world.cloud.member.mail, version=1)
    await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    world.emulator.state.identity.revoke_refresh_tokens(world.cloud.manager.id)
    # The access token the services hold expires too (by the emulator's clock).
    world.emulator.state.clock.advance(timedelta(hours=2))
    sync_id = new_id("sync")
    async with ingress(world) as api:
        accepted = await api.post(
            "/v1/commands/sync-now", json={"command_id": sync_id, "user_id": "ann"}
        )
    assert accepted.status_code == 202, accepted.text
    done = await final_status(world, sync_id)
    assert done["state"] == "failed"
    assert done["failure"]["code"] == "reauthorization_required"
