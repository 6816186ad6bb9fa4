"""calendarView and calendarView/delta, per the event-delta docs: rounds of pages ending in
a deltaLink, incremental rounds, @removed, expiry, series expansion with exceptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from emulators.msgraph import persistence
from emulators.msgraph.calendar.delta import Round, SyncStateGone
from emulators.msgraph.state import EmulatorState
from tests.emulator.calendar_fixtures import (
    BODY_MARKER,
    WINDOW,
    at,
    auth,
    create,
    full_round,
    meeting,
    path,
    weekly,
)
from tests.emulator.conftest import Seed


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
    # delta can't $select: full events, bodies included, each typed.
    assert all(BODY_MARKER in i["body"]["content"] for i in items)
    assert {i["@odata.type"] for i in items} == {"#microsoft.graph.event"}
    assert all("@odata.context" not in i for i in items)

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
    # "a Location header containing a request URL ... (same as the initial query)"
    restart = urlsplit(response.headers["Location"])
    assert restart.path == "/v1.0/me/calendarView/delta"
    assert parse_qs(restart.query) == {k: [v] for k, v in WINDOW.items()}
    fresh, _, _ = await full_round(client, headers, path(response.headers["Location"]))
    assert fresh == []


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
    assert len({i["id"] for i in items}) == 4  # stable, distinct occurrence ids
    assert items[0]["originalStart"] == "2030-03-04T10:00:00Z"
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


async def test_state_tokens_are_opaque_and_unforgeable(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    for day in ("03", "04", "05"):
        await create(client, headers, meeting() | at(f"2030-03-{day}", "09:00", "09:30"))
    first = await client.get(
        "/v1.0/me/calendarView/delta",
        params=WINDOW,
        headers={**headers, "Prefer": "odata.maxpagesize=2"},
    )
    assert "odata.maxpagesize=2" in first.headers["Preference-Applied"]
    next_link = first.json()["@odata.nextLink"]
    token = parse_qs(urlsplit(next_link).query)["$skiptoken"][0]
    assert "2030" not in token and seed.ann.id not in token  # nothing readable
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for query in (
        f"$skiptoken={tampered}",
        "$skiptoken=garbage",
        "$deltatoken=made-up",
        f"$deltatoken={token}",  # a skip token is not a delta token
    ):
        response = await client.get(f"/v1.0/me/calendarView/delta?{query}", headers=headers)
        assert response.status_code == 400, query
    # Another mailbox can't use Ann's token.
    bobs = await client.get(path(next_link), headers=auth(state, seed.bob.id))
    assert bobs.status_code == 400


async def test_changes_outside_the_window_come_as_removed(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    """event-delta: "Events that are outside the date range and that have been added,
    deleted, or updated since the previous delta call" come under @removed too."""
    headers = auth(state, seed.ann.id)
    outside = await create(client, headers, meeting() | at("2030-06-01", "09:00", "09:30"))
    _, delta_link, _ = await full_round(client, headers, params=WINDOW)
    later = await create(client, headers, meeting() | at("2030-07-01", "09:00", "09:30"))
    await client.patch(f"/v1.0/me/events/{outside['id']}", json={"subject": "x"}, headers=headers)
    changes, delta_link, _ = await full_round(client, headers, path(delta_link))
    assert sorted(c["id"] for c in changes) == sorted([outside["id"], later["id"]])
    assert all(c["@removed"] == {"reason": "deleted"} for c in changes)
    await client.delete(f"/v1.0/me/events/{later['id']}", headers=headers)
    changes, _, _ = await full_round(client, headers, path(delta_link))
    assert changes == [
        {
            "@odata.type": "#microsoft.graph.event",
            "id": later["id"],
            "@removed": {"reason": "deleted"},
        }
    ]


async def test_users_path_keeps_its_links_and_prefers_windows_zones(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = {
        **auth(state, seed.ann.id),
        "Prefer": 'outlook.timezone="Pacific Standard Time", odata.maxpagesize=1',
    }
    await create(client, headers, meeting())
    await create(client, headers, meeting() | at("2030-03-05", "09:00", "09:30"))
    first = await client.get(
        "/v1.0/users/ann@contoso.com/calendarView/delta", params=WINDOW, headers=headers
    )
    assert first.status_code == 200
    applied = first.headers["Preference-Applied"]
    assert 'outlook.timezone="Pacific Standard Time"' in applied
    assert "odata.maxpagesize=1" in applied
    assert first.json()["value"][0]["start"] == {
        "dateTime": "2030-03-04T00:00:00.0000000",  # 09:00 Paris = 08:00Z = 00:00 PST
        "timeZone": "Pacific Standard Time",
    }
    next_link = first.json()["@odata.nextLink"]
    assert urlsplit(next_link).path == "/v1.0/users/ann@contoso.com/calendarView/delta"
    items, delta_link, _ = await full_round(client, headers, path(next_link))
    assert len(items) == 1
    assert urlsplit(delta_link).path == "/v1.0/users/ann@contoso.com/calendarView/delta"


async def test_delta_state_survives_an_emulator_restart(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    event = await create(client, headers, meeting())
    _, delta_link, _ = await full_round(client, headers, params=WINDOW)
    saved = persistence.dump(state)
    restarted = EmulatorState(base_url=state.base_url)
    persistence.load(restarted, saved)
    await client.patch(f"/v1.0/me/events/{event['id']}", json={"subject": "x"}, headers=headers)
    # The restarted engine opens the old token and knows its sync state.
    round_, _ = restarted.calendar_delta.start_round(
        seed.ann.id,
        window=None,
        delta_token=parse_qs(urlsplit(delta_link).query)["$deltatoken"][0],
        page_size=10,
    )
    assert round_.pages == [[]]  # the patch happened in the old process only


async def test_query_option_names_are_case_insensitive(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    """Microsoft's own sample sends `startdatetime`/`enddatetime`; the text says $deltaToken."""
    headers = auth(state, seed.ann.id)
    await create(client, headers, meeting())
    first = await client.get(
        "/v1.0/me/calendarView/delta",
        params={"startdatetime": WINDOW["startDateTime"], "enddatetime": WINDOW["endDateTime"]},
        headers=headers,
    )
    assert first.status_code == 200 and len(first.json()["value"]) == 1
    token = parse_qs(urlsplit(first.json()["@odata.deltaLink"]).query)["$deltatoken"][0]
    again = await client.get(
        "/v1.0/me/calendarView/delta", params={"$deltaToken": token}, headers=headers
    )
    assert again.status_code == 200 and again.json()["value"] == []


async def test_an_exception_changes_when_its_series_does(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    body = meeting(recurrence=weekly("2030-03-04", count=2)) | at("2030-03-04", "10:00", "10:30")
    master = await create(client, headers, body)
    items, delta_link, _ = await full_round(client, headers, params=WINDOW)
    await client.patch(f"/v1.0/me/events/{items[0]['id']}", json={"subject": "a"}, headers=headers)
    changes, delta_link, _ = await full_round(client, headers, path(delta_link))
    assert [(c["id"], c["type"]) for c in changes] == [(items[0]["id"], "exception")]
    await client.patch(
        f"/v1.0/me/events/{master['id']}", json={"sensitivity": "private"}, headers=headers
    )
    changes, _, _ = await full_round(client, headers, path(delta_link))
    assert {c["id"] for c in changes} == {items[0]["id"], items[1]["id"]}
    assert {c["sensitivity"] for c in changes} == {"private"}


WINDOW_2030 = (datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))


def _token(round_: Round) -> str:
    return round_.delta_token


async def test_a_mailbox_keeps_its_newest_sync_states_and_no_one_elses_are_evicted(
    state: EmulatorState, seed: Seed
) -> None:
    engine = state.calendar_delta
    engine.max_states_per_mailbox = 3
    window = WINDOW_2030
    bobs = _token(engine.start_round(seed.bob.id, window=window, delta_token=None, page_size=10)[0])
    anns = [
        _token(engine.start_round(seed.ann.id, window=window, delta_token=None, page_size=10)[0])
        for _ in range(4)
    ]
    with pytest.raises(SyncStateGone):  # the oldest of four: evicted
        engine.start_round(seed.ann.id, window=None, delta_token=anns[0], page_size=10)
    # The next one still opens (which adds a state: the next oldest goes in its turn).
    engine.start_round(seed.ann.id, window=None, delta_token=anns[1], page_size=10)
    engine.start_round(seed.bob.id, window=None, delta_token=bobs, page_size=10)


async def test_expired_sync_states_go_and_pruning_looks_only_at_what_it_drops(
    state: EmulatorState, seed: Seed
) -> None:
    """A delta request used to test the age of every state of every mailbox (a scan that
    grew through a load test); states are kept in the order issued, so pruning stops at
    the first one young enough."""
    engine = state.calendar_delta
    window = WINDOW_2030
    old = _token(engine.start_round(seed.ann.id, window=window, delta_token=None, page_size=10)[0])
    state.clock.advance(state.calendars.delta_token_max_age + timedelta(minutes=1))
    young = [
        _token(engine.start_round(seed.bob.id, window=window, delta_token=None, page_size=10)[0])
        for _ in range(50)
    ]
    with pytest.raises(SyncStateGone):
        engine.start_round(seed.ann.id, window=None, delta_token=old, page_size=10)

    looked: list[datetime] = []
    real = state.clock.now

    def now() -> datetime:
        looked.append(real())
        return looked[-1]

    state.clock.now = now  # type: ignore[method-assign]
    engine.start_round(seed.bob.id, window=None, delta_token=young[-1], page_size=10)
    assert len(looked) <= 4, len(looked)  # not one per state kept
