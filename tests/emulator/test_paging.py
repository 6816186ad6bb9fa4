"""Every list answer pages as Outlook does: 10 items unless `$top` (1..1000) says otherwise,
and an `@odata.nextLink` that carries every other query option of the request
(learn.microsoft.com/graph/paging). The `empty_pages` knob answers an empty page that still
carries a nextLink, which a client must follow."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from emulators.msgraph.state import EmulatorState
from tests.emulator.calendar_fixtures import (
    SMVUE_TAG,
    at,
    auth,
    create,
    full_round,
    meeting,
    path,
    weekly,
)
from tests.emulator.conftest import Seed

YEAR = {"startDateTime": "2030-01-01T00:00:00Z", "endDateTime": "2031-01-01T00:00:00Z"}


async def pages(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, params: dict[str, str]
) -> list[dict[str, Any]]:
    """Every page of a list, following nextLinks to the end."""
    answers: list[dict[str, Any]] = []
    next_url: str | None = url
    query: dict[str, str] | None = params
    while next_url:
        response = await client.get(next_url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        answers.append(response.json())
        link = answers[-1].get("@odata.nextLink")
        next_url, query = (path(link), None) if link else (None, None)
        assert len(answers) < 50, "a nextLink loop"
    return answers


def options(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


async def _series(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> str:
    body = meeting(recurrence=weekly("2030-03-04", count=count)) | at(
        "2030-03-04", "10:00", "10:30"
    )
    master = await create(client, headers, body)
    return str(master["id"])


async def test_instances_page_by_ten_and_links_keep_the_window_and_select(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    master = await _series(client, headers, 12)
    url = f"/v1.0/me/events/{master}/instances"
    answers = await pages(client, headers, url, {**YEAR, "$select": "subject,start"})
    assert [len(a["value"]) for a in answers] == [10, 2]
    link = options(answers[0]["@odata.nextLink"])
    assert link["$select"] == ["subject,start"]
    assert (link["startDateTime"], link["endDateTime"]) == (
        [YEAR["startDateTime"]],
        [YEAR["endDateTime"]],
    )
    items = [i for a in answers for i in a["value"]]
    assert len({i["id"] for i in items}) == 12
    kept = {"@odata.etag", "@odata.context", "id", "subject", "start"}
    assert all(set(i) <= kept for i in items), items[0]


async def test_top_sets_the_page_size_and_travels_in_the_link(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    await _series(client, headers, 12)
    view = await pages(client, headers, "/v1.0/me/calendarView", {**YEAR, "$top": "5"})
    assert [len(a["value"]) for a in view] == [5, 5, 2]
    assert options(view[0]["@odata.nextLink"])["$top"] == ["5"]
    for extra in range(11):
        await create(client, headers, meeting(subject=f"single {extra}"))
    expand = f"singleValueExtendedProperties($filter=id eq '{SMVUE_TAG}')"
    events = await pages(client, headers, "/v1.0/me/events", {"$expand": expand})
    assert [len(a["value"]) for a in events] == [10, 2]
    assert options(events[0]["@odata.nextLink"])["$expand"] == [expand]
    assert len({i["id"] for a in events for i in a["value"]}) == 12
    big = await client.get(
        "/v1.0/me/calendarView", params={**YEAR, "$top": "5000"}, headers=headers
    )
    # A $top beyond 1000 is accepted (capped at 1000): everything on one page.
    assert len(big.json()["value"]) == 23 and "@odata.nextLink" not in big.json()


async def test_an_empty_page_can_still_carry_a_next_link(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    await _series(client, headers, 3)
    state.calendars.empty_pages = 1
    view = await pages(client, headers, "/v1.0/me/calendarView", YEAR)
    assert [len(a["value"]) for a in view] == [0, 3]
    assert "@odata.nextLink" in view[0]

    state.calendars.empty_pages = 2  # delta: the round's first page and a later one too
    items, delta_link, count = await full_round(
        client, headers | {"Prefer": "odata.maxpagesize=2"}, params=YEAR
    )
    assert (len(items), count) == (3, 4) and "$deltatoken=" in delta_link
    assert state.calendars.empty_pages == 0
