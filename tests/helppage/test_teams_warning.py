"""No Teams licence: the meeting is still made, without the link, and the outcome says so
in the help page's words — "Teams link not being added to meetings" (issue 9 item 5)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulators.msgraph.faults import FaultRule
from tests.fixtures.connect import connect_user
from tests.helppage.conftest import final_status, ingress
from tests.sync.world import World
from tests.writer.test_writer import eventually_logged, new_id, organised_by_ann, tomorrow_at

pytestmark = pytest.mark.integration

WARNING = (
    "teams_link_unavailable",
    "The meeting was created without a Microsoft Teams link: ensure your Microsoft 365 "
    "license includes Teams",
)


async def bob_on_anns_team_and_ann_connected(api: httpx.AsyncClient, world: World) -> None:
    roster = await api.put(
        "/v1/managers/ann/roster",
        json={
            "members": [
                {"member_id": "bob", "email": world.cloud.member.mail, "display_name": "Bob"}
            ],
            "version": 1,
        },
    )
    assert roster.status_code == 202, roster.text
    connected = await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    assert connected.status == "connected"


async def schedule_with_teams(api: httpx.AsyncClient, world: World, hour: int) -> str:
    command_id = new_id("teams")
    accepted = await api.post(
        "/v1/commands/schedule",
        json={
            "command_id": command_id,
            "manager_id": "ann",
            "member_name": "Bob Member",
            "member_email": world.cloud.member.mail,
            "start": tomorrow_at(hour).isoformat(),
            "time_zone": "Europe/Paris",
            "meeting_type": "30min",
            "add_teams_link": True,
            "prep_url": "https://app.smvue.test/prep/1",
        },
    )
    assert accepted.status_code == 202, accepted.text
    return command_id


def warnings_of(done: dict[str, Any]) -> list[tuple[str, str]]:
    return [(w["code"], w["message"]) for w in done["warnings"]]


async def test_no_teams_licence_makes_the_meeting_without_a_link_and_warns(world: World) -> None:
    world.cloud.manager.teams_licence = False
    async with ingress(world) as api:
        await bob_on_anns_team_and_ann_connected(api, world)
        command_id = await schedule_with_teams(api, world, 15)
    done = await final_status(world, command_id, timeout=45)
    assert done["state"] == "succeeded", done
    assert warnings_of(done) == [WARNING]
    assert done["result"]["join_url"] is None and done["result"]["meeting_id"]
    # The event is on Ann's calendar with Bob invited, without an online meeting.
    [made] = organised_by_ann(world)
    assert not made.data.get("isOnlineMeeting") and "onlineMeeting" not in made.data
    assert [a["emailAddress"]["address"] for a in made.data["attendees"]] == [
        world.cloud.member.mail
    ]
    docs = await world.wait_read_model("ann", lambda d: len(d) == 1)
    assert docs[0]["_id"] == done["result"]["meeting_id"] and docs[0]["join_url"] is None


async def test_a_strict_refusal_of_the_link_still_makes_the_meeting(world: World) -> None:
    """The licence goes between the writer's check and its create, and Graph refuses the
    link (400) instead of quietly downgrading: the writer makes the meeting without it."""
    world.emulator.state.calendars.unlicensed_teams = "error"
    faults = world.emulator.state.faults
    async with ingress(world) as api:
        await bob_on_anns_team_and_ann_connected(api, world)
        faults.add(
            FaultRule(path_regex=r"/me/events$", method="POST", status=None, latency_ms=1500)
        )
        world.emulator.state.request_log.clear()
        command_id = await schedule_with_teams(api, world, 16)
        await eventually_logged(world, "/me/calendar", "GET")
        world.cloud.manager.teams_licence = False
    done = await final_status(world, command_id, timeout=45)
    assert done["state"] == "succeeded", done
    assert warnings_of(done) == [WARNING]
    posts = [
        r.status
        for r in world.emulator.state.request_log.query(path_contains="/me/events")
        if r.method == "POST"
    ]
    assert posts == [400, 201]
    [made] = organised_by_ann(world)
    assert made.id == done["result"]["graph_event_id"]
    assert not made.data.get("isOnlineMeeting") and "onlineMeeting" not in made.data
