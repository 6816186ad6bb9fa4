"""An event moved to Deleted Items and restored (as people do in Outlook) keeps its meeting in
the read model and stays SMVue's to reschedule: the system reads immutable ids
(`Prefer: IdType="ImmutableId"` on every call, learn.microsoft.com/graph/outlook-immutable-id),
and the emulator changes a default id on every move, as Outlook does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.contracts.commands import RescheduleMeeting, RescheduleMeetingRequest
from shared.contracts.connections import connection_id_for
from shared.contracts.outcomes import CommandSucceeded
from shared.contracts.topics import COMMAND_OUTCOMES
from tests.fixtures.connect import connect_user
from tests.fixtures.kafka import TopicReader
from tests.fixtures.waiting import eventually
from tests.sync.world import Doc, World, event
from tests.writer.test_writer import PARIS, outcome, schedule, tomorrow_at

pytestmark = pytest.mark.integration


def _slot(days: int, hour: int) -> datetime:
    base = datetime.now(UTC) + timedelta(days=days)
    return base.replace(hour=hour, minute=0, second=0, microsecond=0)


async def _connected(world: World) -> None:
    await world.roster("ann", world.cloud.member.mail, version=1)
    result = await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    assert result.status == "connected"
    await eventually(world.subscriptions, lambda s: len(s) == 1)


async def _after_move(world: World, graph_id: str) -> list[Doc]:
    """The read model once the syncer has seen the moved event (its new changeKey)."""
    moved = await world.move_and_restore(world.cloud.manager.id, graph_id)
    stored = world.emulator.state.calendars.get(world.cloud.manager.id, moved["immutableId"])
    change_key = stored.change_key
    return await world.wait_read_model(
        "ann", lambda docs: any(d.get("change_key") == change_key for d in docs)
    )


async def test_an_outlook_event_moved_and_restored_keeps_its_meeting(world: World) -> None:
    await _connected(world)
    ann, bob = world.cloud.manager, world.cloud.member
    made = await world.as_user(
        "POST", "/me/events", ann.id, json=event("moved 1:1", _slot(2, 10), [bob.mail], "m")
    )
    (before,) = await world.wait_read_model("ann", lambda d: len(d) == 1)

    docs = await _after_move(world, made["id"])
    assert [(d["_id"], d["graph_event_id"]) for d in docs] == [(before["_id"], made["id"])]


async def test_an_smvue_meeting_moved_and_restored_can_still_be_rescheduled(world: World) -> None:
    await _connected(world)
    async with TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes:
        command = f"sched-{uuid.uuid4().hex[:8]}"
        await world.publish(schedule(command, member_email=world.cloud.member.mail))
        created = await outcome(outcomes, command)
        assert isinstance(created, CommandSucceeded), created
        graph_id = str(created.payload.graph_event_id)
        await world.wait_read_model("ann", lambda d: len(d) == 1 and d[0]["source"] == "outlook")

        docs = await _after_move(world, graph_id)  # the meeting reads as changed, not new
        assert [d["_id"] for d in docs] == [created.payload.meeting_id]
        assert docs[0]["created_in_smvue"] is True

        again = f"resched-{uuid.uuid4().hex[:8]}"
        payload = RescheduleMeetingRequest.model_validate(
            {
                "command_id": again,
                "manager_id": "ann",
                "meeting_id": created.payload.meeting_id,
                "new_start": tomorrow_at(15, days=3),
            }
        )
        await world.publish(RescheduleMeeting.build(key=connection_id_for("ann"), payload=payload))
        result = await outcome(outcomes, again)
        assert isinstance(result, CommandSucceeded), result
    stored = world.emulator.state.calendars.get(world.cloud.manager.id, graph_id)
    assert stored.start == tomorrow_at(15, days=3).replace(tzinfo=ZoneInfo(PARIS)).astimezone(UTC)
