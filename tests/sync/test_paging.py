"""A weekly series with more occurrences in the sync window than Graph's default page (10)
reaches the read model whole, through empty pages that still carry a nextLink
(learn.microsoft.com/graph/paging: follow @odata.nextLink until there is none)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.connect import connect_user
from tests.sync.world import World, event

pytestmark = pytest.mark.integration


async def test_every_occurrence_of_a_long_series_arrives_through_empty_pages(
    world: World,
) -> None:
    ann, bob = world.cloud.manager, world.cloud.member
    await world.roster("ann", bob.mail, version=1)
    first = (datetime.now(UTC) - timedelta(weeks=8)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    weekly = event(
        "Ann / Bob weekly",
        first,
        [bob.mail],
        "paging",
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [first.strftime("%A")]},
            "range": {
                "type": "numbered",
                "startDate": first.date().isoformat(),
                "numberOfOccurrences": 13,  # weeks -8..+4: inside the 90 + 30 day window
            },
        },
    )
    await world.as_user("POST", "/me/events", ann.id, json=weekly)
    world.emulator.state.calendars.empty_pages = 2  # the import round starts with two

    outcome = await connect_user(world.emulator, world.settings, "ann", ann.mail)
    assert outcome.status == "connected"
    docs = await world.wait_read_model("ann", lambda d: len(d) == 13)
    starts = sorted(d["start"].astimezone(UTC) for d in docs)
    assert starts == [first + timedelta(weeks=n) for n in range(13)]
    assert world.emulator.state.calendars.empty_pages == 0
