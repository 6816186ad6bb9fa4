"""calendarView and calendarView/delta, per the event-delta docs: rounds of pages ending in
a deltaLink, incremental rounds, @removed, expiry, series expansion with exceptions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from emulators.msgraph.state import EmulatorState
from tests.emulator.conftest import Seed
from tests.emulator.test_calendar_events import auth, meeting

WINDOW = {"startDateTime": "2030-03-01T00:00:00Z", "endDateTime": "2030-04-01T00:00:00Z"}


async def full_round(
    client: httpx.AsyncClient, headers: dict[str, str], first: str, params: dict[str, str] | None
) -> tuple[list[dict[str, Any]], str, int]:
    """Follows nextLinks to the deltaLink; returns (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    url: str | None = first
    pages = 0
    while url:
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        items += body["value"]
        params = None
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]
        assert "$skiptoken=" in url
    raise AssertionError("no deltaLink")


def path(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def test_full_then_incremental_rounds_with_paging_and_removals(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    ids = []
    for day in range(1, 6):
        body = meeting(subject=f"m{day}")
        body["start"] = {"dateTime": f"2030-03-0{day}T09:00:00", "timeZone": "UTC"}
        body["end"] = {"dateTime": f"2030-03-0{day}T09:30:00", "timeZone": "UTC"}
        ids.append((await client.post("/v1.0/me/events", json=body, headers=headers)).json()["id"])
    paged = {**headers, "Prefer": "odata.maxpagesize=2"}
    items, delta_link, pages = await full_round(
        client, paged, "/v1.0/me/calendarView/delta", WINDOW
    )
    assert pages == 3
    assert sorted(i["subject"] for i in items) == ["m1", "m2", "m3", "m4", "m5"]
    assert "$deltatoken=" in delta_link
    assert all(i["body"]["content"] for i in items)  # delta can't $select: bodies come along

    nothing, delta_link, _ = await full_round(client, paged, path(delta_link), None)
    assert nothing == []

    await client.patch(f"/v1.0/me/events/{ids[0]}", json={"subject": "renamed"}, headers=headers)
    await client.delete(f"/v1.0/me/events/{ids[1]}", headers=headers)
    out = {
        "start": {"dateTime": "2030-06-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-06-01T09:30:00", "timeZone": "UTC"},
    }
    await client.patch(f"/v1.0/me/events/{ids[2]}", json=out, headers=headers)
    changes, _, _ = await full_round(client, paged, path(delta_link), None)
    by_id = {c["id"]: c for c in changes}
    assert by_id[ids[0]]["subject"] == "renamed"
    assert by_id[ids[1]]["@removed"] == {"reason": "deleted"}
    assert by_id[ids[2]]["@removed"] == {"reason": "deleted"}  # moved out of the window
    assert len(changes) == 3


async def test_an_expired_delta_token_requires_a_full_resync(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    _, delta_link, _ = await full_round(client, headers, "/v1.0/me/calendarView/delta", WINDOW)
    state.clock.advance(state.calendars.delta_token_max_age + timedelta(minutes=1))
    headers = auth(state, seed.ann.id)  # a fresh access token after the clock moved
    response = await client.get(path(delta_link), headers=headers)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "SyncStateNotFound"
    fresh, _, _ = await full_round(client, headers, "/v1.0/me/calendarView/delta", WINDOW)
    assert fresh == []
    forged = await client.get("/v1.0/me/calendarView/delta?$deltatoken=made-up", headers=headers)
    assert forged.status_code == 410


async def test_select_is_not_supported_on_delta_and_a_window_is_required(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    selected = await client.get(
        "/v1.0/me/calendarView/delta", params={**WINDOW, "$select": "subject"}, headers=headers
    )
    assert selected.status_code == 400
    no_window = await client.get("/v1.0/me/calendarView/delta", headers=headers)
    assert no_window.status_code == 400


async def test_weekly_series_expands_with_a_moved_and_a_cancelled_occurrence(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    body = meeting(
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            "range": {"type": "numbered", "startDate": "2030-03-04", "numberOfOccurrences": 4},
        }
    )
    body["start"] = {"dateTime": "2030-03-04T10:00:00", "timeZone": "UTC"}
    body["end"] = {"dateTime": "2030-03-04T10:30:00", "timeZone": "UTC"}
    master = (await client.post("/v1.0/me/events", json=body, headers=headers)).json()
    assert master["type"] == "seriesMaster"
    items, delta_link, _ = await full_round(client, headers, "/v1.0/me/calendarView/delta", WINDOW)
    assert [i["type"] for i in items] == ["occurrence"] * 4
    assert {i["seriesMasterId"] for i in items} == {master["id"]}
    second, third = items[1], items[2]

    moved = {
        "start": {"dateTime": "2030-03-12T15:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-03-12T15:30:00", "timeZone": "UTC"},
    }
    assert (
        await client.patch(f"/v1.0/me/events/{second['id']}", json=moved, headers=headers)
    ).status_code == 200
    assert (
        await client.delete(f"/v1.0/me/events/{third['id']}", headers=headers)
    ).status_code == 204

    changes, _, _ = await full_round(client, headers, path(delta_link), None)
    by_id = {c["id"]: c for c in changes}
    assert by_id[second["id"]]["type"] == "exception"
    assert by_id[second["id"]]["start"]["dateTime"].startswith("2030-03-12T15:00")
    assert by_id[third["id"]]["@removed"] == {"reason": "deleted"}

    view = await client.get(
        "/v1.0/me/calendarView", params={**WINDOW, "$top": "50"}, headers=headers
    )
    kinds = [(i["type"], i["start"]["dateTime"][:16]) for i in view.json()["value"]]
    assert kinds == [
        ("occurrence", "2030-03-04T10:00"),
        ("exception", "2030-03-12T15:00"),
        ("occurrence", "2030-03-25T10:00"),
    ]
    instances = await client.get(
        f"/v1.0/me/events/{master['id']}/instances", params=WINDOW, headers=headers
    )
    assert len(instances.json()["value"]) == 3


async def test_times_are_utc_unless_outlook_timezone_is_preferred(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    event = (await client.post("/v1.0/me/events", json=meeting(), headers=headers)).json()
    utc = (await client.get(f"/v1.0/me/events/{event['id']}", headers=headers)).json()
    assert utc["start"]["timeZone"] == "UTC"
    paris = await client.get(
        f"/v1.0/me/events/{event['id']}",
        headers={**headers, "Prefer": 'outlook.timezone="Europe/Paris"'},
    )
    assert paris.json()["start"] == {
        "dateTime": "2030-03-04T09:00:00.0000000",
        "timeZone": "Europe/Paris",
    }
    assert paris.headers["Preference-Applied"] == 'outlook.timezone="Europe/Paris"'
