"""A 1:1 SMVue made that the manager turned into an all-day event in Outlook can still be
rescheduled: the reschedule makes it a timed event again (`isAllDay: false`), as Graph
refuses an all-day event whose start and end are not at midnight (event resource,
`isAllDay`, learn.microsoft.com/graph/api/resources/event)."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.contracts.outcomes import CommandSucceeded
from shared.contracts.topics import COMMAND_OUTCOMES
from tests.fixtures.kafka import TopicReader
from tests.fixtures.services import build, running
from tests.sync.world import World
from tests.writer.test_writer import (
    PARIS,
    connected,
    new_id,
    outcome,
    reschedule,
    schedule,
    tomorrow_at,
)

pytestmark = pytest.mark.integration


async def test_an_event_made_all_day_in_outlook_is_rescheduled_to_a_time(world: World) -> None:
    await connected(world)
    ann = world.cloud.manager
    async with (
        running(build("writer", world.settings)),
        TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes,
    ):
        made = new_id("made")
        await world.publish(schedule(made))
        created = await outcome(outcomes, made)
        assert isinstance(created, CommandSucceeded), created
        graph_id = str(created.payload.graph_event_id)
        day = tomorrow_at(0).date().isoformat()
        next_day = (tomorrow_at(0) + timedelta(days=1)).date().isoformat()
        await world.as_user(
            "PATCH",
            f"/me/events/{graph_id}",
            ann.id,
            json={
                "isAllDay": True,
                "start": {"dateTime": f"{day}T00:00:00", "timeZone": PARIS},
                "end": {"dateTime": f"{next_day}T00:00:00", "timeZone": PARIS},
            },
        )

        again = new_id("again")
        await world.publish(
            reschedule(again, str(created.payload.meeting_id), new_start=tomorrow_at(11, days=2))
        )
        result = await outcome(outcomes, again)
        assert isinstance(result, CommandSucceeded), result
    stored = world.emulator.state.calendars.get(ann.id, graph_id)
    new_start = tomorrow_at(11, days=2).replace(tzinfo=ZoneInfo(PARIS)).astimezone(UTC)
    assert stored.data["isAllDay"] is False
    assert (stored.start, stored.end - stored.start) == (new_start, timedelta(minutes=30))
