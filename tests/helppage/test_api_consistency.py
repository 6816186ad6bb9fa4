"""The API says what it does (issue 9 item 9): cancelled or deleted 1:1s stay listed,
flagged `is_cancelled` (and out of the cadence); a meeting SMVue scheduled reads
`source: "smvue"` even after the syncer saw it in Outlook; a body that is not JSON gets
415 on the command and roster APIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.connect import connect_user
from tests.fixtures.waiting import eventually
from tests.helppage.conftest import final_status, ingress, projector
from tests.sync.world import World, event
from tests.writer.test_writer import new_id, tomorrow_at

pytestmark = pytest.mark.integration


async def listed(world: World) -> dict[str, dict[str, Any]]:
    """The dashboard's 1:1s for the next 30 days, by subject."""
    async with projector(world) as api:
        answer = await api.get("/v1/managers/ann/one-on-ones")
    assert answer.status_code == 200, answer.text
    return {m["subject"]: m for m in answer.json()["one_on_ones"]}


async def test_cancelled_and_deleted_meetings_are_flagged_and_smvues_read_smvue(
    world: World,
) -> None:
    ann, bob = world.cloud.manager, world.cloud.member
    async with ingress(world) as api:
        roster = await api.put(
            "/v1/managers/ann/roster",
            json={
                "members": [{"member_id": "bob", "email": bob.mail, "display_name": "Bob"}],
                "version": 1,
            },
        )
        assert roster.status_code == 202, roster.text
        soon = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
        made: dict[str, Any] = {}
        for subject, hours in (("to delete", 0), ("to make private", 2), ("stays", 4)):
            body = event(subject, soon + timedelta(hours=hours), [bob.mail], "m")
            made[subject] = await world.as_user("POST", "/me/events", ann.id, json=body)
        assert (await connect_user(world.emulator, world.settings, "ann", ann.mail)).status == (
            "connected"
        )
        await eventually(lambda: listed(world), lambda m: len(m) == 3)
        await eventually(world.subscriptions, lambda s: len(s) == 1)

        command_id = new_id("smvue")
        accepted = await api.post(
            "/v1/commands/schedule",
            json={
                "command_id": command_id,
                "manager_id": "ann",
                "member_name": "Bob",
                "member_email": bob.mail,
                "start": tomorrow_at(15).isoformat(),
                "time_zone": "Europe/Paris",
                "meeting_type": "30min",
                "add_teams_link": False,
                "prep_url": "https://app.smvue.test/prep/1",
            },
        )
        assert accepted.status_code == 202, accepted.text
        done = await final_status(world, command_id, timeout=45)
        assert done["state"] == "succeeded", done
        meeting_id = done["result"]["meeting_id"]
        # The syncer sees it in Outlook too and publishes it again (it can't tell who made
        # it): the API still says SMVue made it.
        await eventually(
            lambda: world.mongo_docs("one_on_ones", {"_id": meeting_id}),
            lambda d: bool(d) and d[0]["source"] == "outlook",
        )
        [ours] = [m for m in (await listed(world)).values() if m["meeting_id"] == meeting_id]
        assert (ours["source"], ours["created_in_smvue"]) == ("smvue", True)
        assert {
            m["source"] for m in (await listed(world)).values() if m["meeting_id"] != meeting_id
        } == {"outlook"}

        # Cancelled from SMVue, deleted in Outlook: still listed, flagged. Made private: gone.
        cancel_id = new_id("cancel")
        cancelled = await api.post(
            "/v1/commands/cancel",
            json={
                "command_id": cancel_id,
                "manager_id": "ann",
                "meeting_id": meeting_id,
                "message": "sorry",
            },
        )
        assert cancelled.status_code == 202, cancelled.text
        assert (await final_status(world, cancel_id, timeout=45))["state"] == "succeeded"
    await world.as_user("DELETE", f"/me/events/{made['to delete']['id']}", ann.id)
    await world.as_user(
        "PATCH",
        f"/me/events/{made['to make private']['id']}",
        ann.id,
        json={"sensitivity": "private"},
    )
    now_listed = await eventually(
        lambda: listed(world),
        lambda m: (
            "to make private" not in m
            and m.get("to delete", {}).get("is_cancelled") is True
            and m.get(ours["subject"], {}).get("is_cancelled") is True
        ),
    )
    assert {s: m["is_cancelled"] for s, m in now_listed.items()} == {
        "to delete": True,
        "stays": False,
        ours["subject"]: True,
    }
    # The syncer saw SMVue's cancellation in Outlook as well: still flagged, not removed.
    await eventually(
        lambda: world.mongo_docs("calendar_items", {"published.meeting_id": meeting_id}),
        lambda d: bool(d) and d[0]["published"]["cancelled"] is True,
    )
    assert (await listed(world))[ours["subject"]]["is_cancelled"] is True
    # The cadence counts only what is still on: "stays" is next.
    async with projector(world) as api:
        cadence = (await api.get("/v1/managers/ann/cadence")).json()["members"]
    assert [datetime.fromisoformat(m["next_scheduled"]) for m in cadence] == [
        datetime.fromisoformat(now_listed["stays"]["start"])
    ]


async def test_a_body_that_is_not_json_gets_415(world: World) -> None:
    payload = '{"members": [], "version": 1}'
    async with ingress(world) as api:
        for path, method in (
            ("/v1/managers/ann/roster", "PUT"),
            ("/v1/commands/schedule", "POST"),
            ("/v1/commands/cancel", "POST"),
            ("/v1/commands/reschedule", "POST"),
            ("/v1/commands/sync-now", "POST"),
        ):
            for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
                headers = {"Content-Type": content_type} if content_type else {}
                answer = await api.request(method, path, content=payload, headers=headers)
                assert answer.status_code == 415, (path, content_type, answer.text)
                assert "application/json" in answer.json()["detail"]
        # JSON with a charset is JSON; a bad JSON body is still a 422 with a reason.
        ok = await api.put(
            "/v1/managers/ann/roster",
            content=payload,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert ok.status_code == 202, ok.text
        bad = await api.put(
            "/v1/managers/ann/roster", content="{}", headers={"Content-Type": "application/json"}
        )
        assert bad.status_code == 422
        unauthenticated = await api.put(
            "/v1/managers/ann/roster",
            content=payload,
            headers={"Content-Type": "text/plain", "Authorization": "Bearer nope"},
        )
        assert unauthenticated.status_code == 401
