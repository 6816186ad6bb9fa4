"""The command API on the ingress, end to end: the SMVue backend posts commands over HTTP,
they are checked at the edge (4xx with a reason, nothing published), carried out by the
writer, and their outcome is read back from `GET /v1/commands/{id}`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.contracts.commands import ScheduleMeeting, SyncNow
from shared.contracts.connections import connection_id_for
from shared.contracts.outcomes import CommandFailed, CommandFailure
from shared.contracts.topics import CONNECTION_COMMANDS, MEETING_COMMANDS
from shared.contracts.user_errors import UserErrorCode, user_message
from tests.fixtures.connect import SERVICE_TOKEN, connect_user
from tests.fixtures.kafka import TopicReader
from tests.fixtures.services import build, running
from tests.sync.world import World
from tests.writer.test_writer import organised_by_ann, tomorrow_at

pytestmark = pytest.mark.integration


def api(world: World, token: str | None = SERVICE_TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{world.settings.ingress_port}", headers=headers
    )


def schedule_body(command_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "command_id": command_id,
        "manager_id": "ann",
        "member_name": "Bob Member",
        "member_email": "bob.member@contoso.test",
        "start": tomorrow_at(10).isoformat(),
        "time_zone": "Europe/Paris",
        "meeting_type": "30min",
        "add_teams_link": False,
        "prep_url": "https://app.smvue.test/prep/1",
        **overrides,
    }


async def final_status(client: httpx.AsyncClient, command_id: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 45
    while True:
        answer = await client.get(f"/v1/commands/{command_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["state"] != "accepted":
            return body
        assert loop.time() < deadline, body
        await asyncio.sleep(0.2)


async def test_commands_over_http_are_checked_carried_out_and_reported(world: World) -> None:
    async with (
        api(world) as client,
        TopicReader(world.settings, MEETING_COMMANDS, CONNECTION_COMMANDS) as published,
    ):
        # Before connecting: not connected, nothing published.
        first = await client.post("/v1/commands/schedule", json=schedule_body(new_id()))
        assert first.status_code == 409
        assert first.json()["detail"]["code"] == "calendar_not_connected"
        assert first.json()["detail"]["message"] == "Outlook Calendar is not connected"

        bob = {"member_id": "bob", "email": "Bob.Member@contoso.test", "display_name": "Bob"}
        put = await client.put("/v1/managers/ann/roster", json={"members": [bob], "version": 1})
        assert put.status_code == 202
        assert (await client.get("/v1/managers/ann/roster")).json()["members"][0][
            "member_id"
        ] == "bob"
        outcome = await connect_user(
            world.emulator, world.settings, "ann", world.cloud.manager.mail
        )
        assert outcome.status == "connected"

        # Bad input: a clear 4xx each, nothing published.
        bad = [
            (
                schedule_body(new_id(), member_email="carol@contoso.test"),
                422,
                "not on this manager's team",
            ),
            (
                schedule_body(new_id(), start=(datetime.now(UTC) - timedelta(hours=1)).isoformat()),
                422,
                "future",
            ),
            (schedule_body(new_id(), meeting_type="45min"), 422, "meeting_type"),
            (schedule_body(new_id(), time_zone="Mars/Olympus"), 422, "time zone"),
            (schedule_body(new_id(), manager_id="zed"), 409, "calendar_not_connected"),
        ]
        for body, status, reason in bad:
            answer = await client.post("/v1/commands/schedule", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert reason in answer.text
        malformed = await client.post(
            "/v1/commands/schedule",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert malformed.status_code == 422
        empty = await client.post(
            "/v1/commands/reschedule",
            json={"command_id": new_id(), "manager_id": "ann", "meeting_id": "mtg_x"},
        )
        assert empty.status_code == 422 and "new start" in empty.text
        async with api(world, token=None) as anonymous:
            assert (
                await anonymous.post("/v1/commands/schedule", json=schedule_body(new_id()))
            ).status_code == 401
            assert (await anonymous.get("/v1/commands/whatever-1")).status_code == 401
        await published.poll()
        assert published.messages == []

        async with running(build("writer", world.settings)):
            command_id = new_id()
            accepted = await client.post("/v1/commands/schedule", json=schedule_body(command_id))
            assert accepted.status_code == 202
            assert accepted.json() == {
                "command_id": command_id,
                "status_url": f"/v1/commands/{command_id}",
            }
            again = await client.post("/v1/commands/schedule", json=schedule_body(command_id))
            assert again.status_code == 202  # the same command: accepted again, not re-sent
            reused = await client.post(
                "/v1/commands/schedule", json=schedule_body(command_id, meeting_type="60min")
            )
            assert reused.status_code == 409 and "already used" in reused.text

            done = await final_status(client, command_id)
            assert done["state"] == "succeeded" and done["kind"] == "schedule"
            meeting_id = done["result"]["meeting_id"]
            assert [e.id for e in organised_by_ann(world)] == [done["result"]["graph_event_id"]]

            move = new_id()
            answer = await client.post(
                "/v1/commands/reschedule",
                json={
                    "command_id": move,
                    "manager_id": "ann",
                    "meeting_id": meeting_id,
                    "meeting_type": "60min",
                },
            )
            assert answer.status_code == 202
            assert (await final_status(client, move))["state"] == "succeeded"

            foreign = new_id()
            answer = await client.post(
                "/v1/commands/cancel",
                json={"command_id": foreign, "manager_id": "ann", "meeting_id": "mtg_not_ours"},
            )
            assert answer.status_code == 202
            failed = await final_status(client, foreign)
            assert failed["state"] == "failed"
            assert failed["failure"]["code"] == "not_managed_by_smvue"

        sync = new_id()
        answer = await client.post(
            "/v1/commands/sync-now", json={"command_id": sync, "user_id": "ann"}
        )
        assert answer.status_code == 202
        assert (await client.get("/v1/commands/unknown-cmd-1")).status_code == 404

        await published.wait_for(lambda m: any(isinstance(x, SyncNow) for x in m))
        schedules = [m for m in published.messages if isinstance(m, ScheduleMeeting)]
        assert [m.payload.command_id for m in schedules] == [command_id]
        assert {m.key for m in published.messages} == {connection_id_for("ann")}


def new_id() -> str:
    return f"api-{uuid.uuid4().hex[:12]}"


async def test_rosters_and_outcomes_produced_straight_on_the_topics_are_picked_up(
    world: World,
) -> None:

    await world.roster("ann", "Dee@contoso.test", version=3)
    await world.roster("ann", "old@contoso.test", version=2)  # stale: ignored
    failure = CommandFailure(
        command_id="backend-cmd-1",
        kind="schedule",
        manager_id="ann",
        code=UserErrorCode.THROTTLED,
        message=user_message(UserErrorCode.THROTTLED),
        completed_at=datetime.now(UTC),
    )
    await world.publish(CommandFailed.build(key=connection_id_for("ann"), payload=failure))
    async with api(world) as client:
        status = await final_status_404_tolerant(client, "backend-cmd-1")
        assert status["state"] == "failed" and status["failure"]["code"] == "throttled"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            roster = await client.get("/v1/managers/ann/roster")
            if roster.status_code == 200 and roster.json()["version"] == 3:
                break
            assert loop.time() < deadline, roster.text
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # the stale version had every chance to land
        assert [
            m["email"] for m in (await client.get("/v1/managers/ann/roster")).json()["members"]
        ] == ["Dee@contoso.test"]


async def final_status_404_tolerant(client: httpx.AsyncClient, command_id: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (await client.get(f"/v1/commands/{command_id}")).status_code == 404:
        assert loop.time() < deadline
        await asyncio.sleep(0.2)
    return await final_status(client, command_id)
