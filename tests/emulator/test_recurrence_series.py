"""Recurring series over HTTP, per the event / patternedRecurrence / event-list-instances
docs: a seriesMaster expands into occurrences in calendarView; PATCH on an occurrence id moves
it (type exception), DELETE removes it; the series' own changes drop its exceptions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulators.msgraph.state import EmulatorState
from tests.emulator.calendar_fixtures import at, auth, create, meeting
from tests.emulator.conftest import Seed

YEAR = {"startDateTime": "2030-01-01T00:00:00Z", "endDateTime": "2031-01-01T00:00:00Z"}


def series(pattern: dict[str, Any], range_: dict[str, Any], day: str) -> dict[str, Any]:
    return meeting(recurrence={"pattern": pattern, "range": range_}) | at(day, "10:00", "10:30")


async def view(
    client: httpx.AsyncClient, headers: dict[str, str], window: dict[str, str] = YEAR
) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1.0/me/calendarView", params={**window, "$top": "100"}, headers=headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["value"]
    return items


CASES = {
    "weekly, every 2 weeks, 4 times": (
        {"type": "weekly", "interval": 2, "daysOfWeek": ["tuesday"], "firstDayOfWeek": "sunday"},
        {"type": "numbered", "startDate": "2030-03-05", "numberOfOccurrences": 4},
        "2030-03-05",
        ["2030-03-05", "2030-03-19", "2030-04-02", "2030-04-16"],
    ),
    "weekly until an end date": (
        {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "thursday"]},
        {"type": "endDate", "startDate": "2030-03-04", "endDate": "2030-03-14"},
        "2030-03-04",
        ["2030-03-04", "2030-03-07", "2030-03-11", "2030-03-14"],
    ),
    "daily, every 2 days": (
        {"type": "daily", "interval": 2},
        {"type": "numbered", "startDate": "2030-03-04", "numberOfOccurrences": 4},
        "2030-03-04",
        ["2030-03-04", "2030-03-06", "2030-03-08", "2030-03-10"],
    ),
    "absoluteMonthly on the 15th": (
        {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
        {"type": "numbered", "startDate": "2030-03-15", "numberOfOccurrences": 4},
        "2030-03-15",
        ["2030-03-15", "2030-04-15", "2030-05-15", "2030-06-15"],
    ),
    "relativeMonthly second tuesday": (
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"},
        {"type": "noEnd", "startDate": "2030-03-01"},
        "2030-03-12",
        ["2030-03-12", "2030-04-09", "2030-05-14", "2030-06-11"],
    ),
    "relativeMonthly last friday": (
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
        {"type": "endDate", "startDate": "2030-03-01", "endDate": "2030-06-30"},
        "2030-03-29",
        ["2030-03-29", "2030-04-26", "2030-05-31", "2030-06-28"],
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_series_expand_with_one_moved_and_one_cancelled(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed, case: str
) -> None:
    pattern, range_, first_day, days = CASES[case]
    headers = auth(state, seed.ann.id)
    master = await create(client, headers, series(pattern, range_, first_day))
    assert master["type"] == "seriesMaster"
    assert master["recurrence"]["pattern"]["type"] == pattern["type"]
    window = {"startDateTime": "2030-03-01T00:00:00Z", "endDateTime": "2030-07-01T00:00:00Z"}
    items = await view(client, headers, window)
    assert [i["start"]["dateTime"][:10] for i in items] == days
    assert {(i["type"], i["seriesMasterId"]) for i in items} == {("occurrence", master["id"])}
    moved_day = "2030-02-20"  # moved out of the series' span, before the window
    moved = await client.patch(
        f"/v1.0/me/events/{items[1]['id']}",
        json=at(moved_day, "16:00", "16:45") | {"subject": "moved"},
        headers=headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["type"] == "exception"
    assert moved.json()["id"] == items[1]["id"]  # the occurrence id stays stable
    deleted = await client.delete(f"/v1.0/me/events/{items[2]['id']}", headers=headers)
    assert deleted.status_code == 204
    wider = {"startDateTime": "2030-02-01T00:00:00Z", "endDateTime": "2030-07-01T00:00:00Z"}
    after = await view(client, headers, wider)
    assert [(i["type"], i["start"]["dateTime"][:16]) for i in after] == [
        ("exception", f"{moved_day}T16:00"),
        ("occurrence", f"{days[0]}T10:00"),
        ("occurrence", f"{days[3]}T10:00"),
    ]
    gone = await client.get(f"/v1.0/me/events/{items[2]['id']}", headers=headers)
    assert gone.status_code == 404
    exception = await client.get(f"/v1.0/me/events/{items[1]['id']}", headers=headers)
    assert exception.json()["subject"] == "moved"
    assert exception.json()["originalStart"].startswith(days[1])


async def test_instances_and_series_edits(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    master = await create(
        client,
        headers,
        series(
            {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            {"type": "numbered", "startDate": "2030-03-04", "numberOfOccurrences": 3},
            "2030-03-04",
        ),
    )
    url = f"/v1.0/me/events/{master['id']}/instances"
    no_window = await client.get(url, headers=headers)
    assert no_window.status_code == 400
    instances = (await client.get(url, params=YEAR, headers=headers)).json()["value"]
    assert [i["type"] for i in instances] == ["occurrence"] * 3
    await client.patch(
        f"/v1.0/me/events/{instances[0]['id']}", json={"subject": "special"}, headers=headers
    )
    assert [
        i["type"] for i in (await client.get(url, params=YEAR, headers=headers)).json()["value"]
    ] == ["exception", "occurrence", "occurrence"]
    # Editing the series' time drops its exceptions and moves every occurrence.
    await client.patch(
        f"/v1.0/me/events/{master['id']}", json=at("2030-03-04", "11:00", "11:30"), headers=headers
    )
    again = (await client.get(url, params=YEAR, headers=headers)).json()["value"]
    assert [(i["type"], i["start"]["dateTime"][11:16]) for i in again] == [
        ("occurrence", "11:00")
    ] * 3
    # A subject change on the master shows on its occurrences.
    await client.patch(f"/v1.0/me/events/{master['id']}", json={"subject": "new"}, headers=headers)
    assert {i["subject"] for i in await view(client, headers)} == {"new"}
    missing = await client.get("/v1.0/me/events/AAMkAGnope/instances", params=YEAR, headers=headers)
    assert missing.status_code == 404


async def test_an_occurrence_moved_into_the_window_shows_there(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    master = await create(
        client,
        headers,
        series(
            {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            {"type": "numbered", "startDate": "2030-03-04", "numberOfOccurrences": 8},
            "2030-03-04",
        ),
    )
    april = {"startDateTime": "2030-04-01T00:00:00Z", "endDateTime": "2030-05-01T00:00:00Z"}
    last = (await view(client, headers, april))[-1]
    assert last["start"]["dateTime"].startswith("2030-04-22")
    await client.patch(
        f"/v1.0/me/events/{last['id']}", json=at("2030-03-01", "08:00", "08:30"), headers=headers
    )
    march = {"startDateTime": "2030-03-01T00:00:00Z", "endDateTime": "2030-03-02T00:00:00Z"}
    shown = await view(client, headers, march)
    assert [(i["id"], i["type"], i["seriesMasterId"]) for i in shown] == [
        (last["id"], "exception", master["id"])
    ]
