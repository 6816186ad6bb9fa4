"""Helpers shared by the calendar-side emulator tests (import them explicitly).

The `client`, `state` and `seed` fixtures come from tests/emulator/conftest.py (the identity
side); bearer tokens are real ones minted by the emulator's identity service.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from emulators.msgraph.state import EmulatorState

WINDOW = {"startDateTime": "2030-03-01T00:00:00Z", "endDateTime": "2030-04-01T00:00:00Z"}
SMVUE_TAG = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name SMVueManaged"
BODY_MARKER = "PRIVATE-BODY-MARKER-7f3a"
IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}  # what the system sends on every call


def auth(state: EmulatorState, user_id: str, scopes: str = "Calendars.ReadWrite") -> dict[str, str]:
    return {"Authorization": f"Bearer {state.identity.mint_access_token(user_id, scopes)}"}


def at(day: str, start: str, end: str, tz: str = "UTC") -> dict[str, Any]:
    """start/end of one day: at("2030-03-04", "09:00", "09:30")."""
    return {
        "start": {"dateTime": f"{day}T{start}:00", "timeZone": tz},
        "end": {"dateTime": f"{day}T{end}:00", "timeZone": tz},
    }


def meeting(**extra: Any) -> dict[str, Any]:
    """A 1:1 Ann → Bob on 2030-03-04 09:00 Paris, with an HTML body carrying a marker."""
    return {
        "subject": "1:1 with Bob",
        "body": {
            "contentType": "HTML",
            "content": f"<p>Prep <a href='https://smvue/prep/1'>notes</a> {BODY_MARKER}</p>",
        },
        **at("2030-03-04", "09:00", "09:30", "Europe/Paris"),
        "attendees": [
            {"emailAddress": {"address": "bob@contoso.com", "name": "Bob"}, "type": "required"}
        ],
        **extra,
    }


def weekly(
    first_day: str, count: int | None = None, end_date: str | None = None, **pattern: Any
) -> dict[str, Any]:
    """A patternedRecurrence: weekly on first_day's weekday unless daysOfWeek is given."""
    range_: dict[str, Any] = {"startDate": first_day}
    if count is not None:
        range_ |= {"type": "numbered", "numberOfOccurrences": count}
    elif end_date is not None:
        range_ |= {"type": "endDate", "endDate": end_date}
    else:
        range_ |= {"type": "noEnd"}
    return {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], **pattern},
        "range": range_,
    }


def path(link: str) -> str:
    """A nextLink/deltaLink as a path + query the ASGI client can GET."""
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/v1.0/me/events", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def full_round(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    first: str = "/v1.0/me/calendarView/delta",
    params: dict[str, str] | None = None,
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
            assert "$deltatoken=" in body["@odata.deltaLink"]
            return items, body["@odata.deltaLink"], pages
        url = path(body["@odata.nextLink"])
        assert "$skiptoken=" in url
    raise AssertionError("no deltaLink")
