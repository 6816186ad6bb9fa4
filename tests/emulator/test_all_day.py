"""All-day events start and end at midnight, in one time zone (event resource, `isAllDay`:
"start and end time must be set to midnight and be in the same time zone"); the emulator
refuses others with 400, on create and on update. `Prefer: outlook.timezone` changes how
answers are rendered, never what is stored or checked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from emulators.msgraph.state import EmulatorState
from tests.emulator.calendar_fixtures import IMMUTABLE, at, auth, create, meeting, weekly
from tests.emulator.conftest import Seed

PARIS = "Europe/Paris"


def all_day(first: str, last: str, tz: str = PARIS, **extra: Any) -> dict[str, Any]:
    return meeting(
        isAllDay=True,
        start={"dateTime": f"{first}T00:00:00", "timeZone": tz},
        end={"dateTime": f"{last}T00:00:00", "timeZone": tz},
        **extra,
    )


def refused(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ErrorPropertyValidationFailure" and error["message"]


async def test_an_all_day_event_at_midnight_is_stored_in_its_own_zone(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id) | IMMUTABLE  # stored ids, to look them up
    pacific = headers | {"Prefer": 'IdType="ImmutableId", outlook.timezone="Pacific Standard Time"'}
    created = await client.post(
        "/v1.0/me/events", json=all_day("2030-03-04", "2030-03-06"), headers=pacific
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["isAllDay"] is True
    assert body["start"] == {
        "dateTime": "2030-03-03T15:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    stored = state.calendars.get(seed.ann.id, body["id"])
    paris_midnight = datetime(2030, 3, 4, tzinfo=ZoneInfo(PARIS)).astimezone(UTC)
    assert (stored.start, stored.start_tz, stored.end_tz) == (paris_midnight, PARIS, PARIS)
    assert stored.end - stored.start == (datetime(2030, 3, 6) - datetime(2030, 3, 4))
    plain = (await client.get(f"/v1.0/me/events/{body['id']}", headers=headers)).json()
    assert plain["start"] == {"dateTime": "2030-03-03T23:00:00.0000000", "timeZone": "UTC"}


async def test_all_day_events_off_midnight_are_refused(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id) | IMMUTABLE  # stored ids, to look them up
    paris_view = headers | {"Prefer": f'IdType="ImmutableId", outlook.timezone="{PARIS}"'}
    not_midnight = meeting(isAllDay=True) | at("2030-03-04", "10:00", "10:30", PARIS)
    refused(await client.post("/v1.0/me/events", json=not_midnight, headers=headers))
    zero_days = all_day("2030-03-04", "2030-03-04")
    refused(await client.post("/v1.0/me/events", json=zero_days, headers=headers))
    two_zones = all_day("2030-03-04", "2030-03-05") | {
        "end": {"dateTime": "2030-03-05T00:00:00", "timeZone": "UTC"}
    }
    refused(await client.post("/v1.0/me/events", json=two_zones, headers=headers))
    # Paris midnight given in UTC is 23:00 in its own zone: the preference doesn't help.
    in_utc = all_day("2030-03-03", "2030-03-04", tz="UTC") | {
        "start": {"dateTime": "2030-03-03T23:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-03-04T23:00:00", "timeZone": "UTC"},
    }
    refused(await client.post("/v1.0/me/events", json=in_utc, headers=paris_view))
    ok = await client.post(
        "/v1.0/me/events", json=all_day("2030-03-04", "2030-03-05", tz="UTC"), headers=paris_view
    )
    assert ok.status_code == 201, ok.text
    assert state.calendars.get(seed.ann.id, ok.json()["id"]).start_tz == "UTC"
    assert len(state.calendars.events_of(seed.ann.id)) == 1


async def test_updates_keep_all_day_events_at_midnight(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id) | IMMUTABLE  # stored ids, to look them up
    timed = await create(client, headers, meeting())
    refused(
        await client.patch(
            f"/v1.0/me/events/{timed['id']}", json={"isAllDay": True}, headers=headers
        )
    )
    became = await client.patch(
        f"/v1.0/me/events/{timed['id']}", json=all_day("2030-03-04", "2030-03-05"), headers=headers
    )
    assert became.status_code == 200 and became.json()["isAllDay"] is True
    moved = at("2030-03-05", "09:00", "17:00", PARIS)
    refused(await client.patch(f"/v1.0/me/events/{timed['id']}", json=moved, headers=headers))
    assert state.calendars.get(seed.ann.id, timed["id"]).start == datetime(
        2030, 3, 4, tzinfo=ZoneInfo(PARIS)
    ).astimezone(UTC)

    series = await create(
        client,
        headers,
        all_day("2030-03-04", "2030-03-05", recurrence=weekly("2030-03-04", count=3)),
    )
    window = {"startDateTime": "2030-03-01T00:00:00Z", "endDateTime": "2030-04-01T00:00:00Z"}
    first = (
        await client.get(
            f"/v1.0/me/events/{series['id']}/instances", params=window, headers=headers
        )
    ).json()["value"][0]
    refused(await client.patch(f"/v1.0/me/events/{first['id']}", json=moved, headers=headers))
