"""The contract check (emulators/msgraph/contract.py) catches what Graph would never send:
unknown properties, mistyped values, enum values outside the CSDL, per-item contexts, a
framework error body. The fixtures fail any test whose emulator recorded a violation."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from emulators.msgraph.contract import ENV_SWITCH, ContractCheck, check_answer
from emulators.msgraph.state import EmulatorState
from tests.emulator.calendar_fixtures import WINDOW, auth, create, meeting, weekly
from tests.emulator.conftest import Seed

EVENT = "/v1.0/me/events/AAMk1"


async def _real_event(client: httpx.AsyncClient, state: EmulatorState, seed: Seed) -> Any:
    headers = auth(state, seed.ann.id)
    body = meeting(recurrence=weekly("2030-03-04", count=3), isOnlineMeeting=True)
    return await create(client, headers, body)


async def test_real_answers_pass_and_each_kind_of_mistake_is_caught(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    event = await _real_event(client, state, seed)
    assert check_answer("GET", EVENT, 200, event) == []

    def broken(**changes: Any) -> list[str]:
        bad = copy.deepcopy(event)
        for dotted, value in changes.items():
            target = bad
            *parents, last = dotted.split("__")
            for part in parents:
                target = target[part]
            target[last] = value
        return check_answer("GET", EVENT, 200, bad)

    assert broken(isAllDay="false") == ["isAllDay: 'false' is not an Edm.Boolean"]
    assert broken(subjectLine="x") == ["subjectLine: not a property of event"]
    assert broken(showAs="away") == ["showAs: 'away' is not a member of freeBusyStatus"]
    assert broken(reminderMinutesBeforeStart=True)  # a bool isn't an Int32
    assert broken(createdDateTime="yesterday")
    assert broken(start__dateTime=None) == ["start.dateTime: null, but Edm.String isn't nullable"]
    assert broken(location__floor=3) == ["location.floor: not a property of location"]
    assert broken(attendees=[{"type": "boss", "emailAddress": {"address": "b@c"}}])
    assert broken(recurrence__pattern__daysOfWeek=["funday"])
    assert broken(onlineMeeting__joinUrl=42)
    assert broken(**{"@odata.whatever": 1})
    calendar = {"id": "c", "defaultOnlineMeetingProvider": "none", "color": "auto"}
    assert check_answer("GET", "/v1.0/me/calendar", 200, calendar) == [
        "defaultOnlineMeetingProvider: 'none' is not a member of onlineMeetingProviderType"
    ]


async def test_collections_errors_and_removed_items(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    event = await _real_event(client, state, seed)
    item = {k: v for k, v in event.items() if k != "@odata.context"}
    path = "/v1.0/me/calendarView"
    good = {"@odata.context": "x", "value": [item], "@odata.nextLink": "y"}
    assert check_answer("GET", path, 200, good) == []
    assert check_answer("GET", path, 200, {**good, "value": [event]})  # per-item context
    assert check_answer("GET", path, 200, {**good, "count": 1})
    removed = {
        "@odata.type": "#microsoft.graph.event",
        "id": "x",
        "@removed": {"reason": "deleted"},
    }
    assert check_answer("GET", f"{path}/delta()", 200, {"value": [removed]}) == []
    assert check_answer("GET", f"{path}/delta", 200, {"value": [{**removed, "subject": "s"}]})
    # Graph's error body passes, FastAPI's doesn't.
    error = {"error": {"code": "x", "message": "y", "innerError": {"date": "d", "request-id": "r"}}}
    assert check_answer("GET", path, 404, error) == []
    assert check_answer("GET", path, 404, {"detail": "Not Found"})
    assert check_answer("PUT", "/v1.0/anything", 405, {"detail": "Method Not Allowed"})


async def test_a_mistyped_property_in_an_emulator_answer_is_recorded(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    """End to end: the middleware checks what the emulator actually sent."""
    headers = auth(state, seed.ann.id)
    made = await create(client, headers, meeting())
    assert list(state.contract.violations) == []
    [stored] = state.calendars.events_of(seed.ann.id)
    stored.data["importance"] = "urgent"  # bypassing the create's own validation
    await client.get(f"/v1.0/me/events/{made['id']}", headers=headers)
    await client.get("/v1.0/me/calendarView", params=WINDOW, headers=headers)
    problems = [str(v) for v in state.contract.violations]
    assert len(problems) == 2, problems
    assert all("'urgent' is not a member of importance" in p for p in problems)
    seen = (await client.get("/_emulator/contract")).json()
    assert seen == {"enabled": True, "violations": problems}
    await client.delete("/_emulator/contract")  # else the fixture fails this test (the point)
    assert list(state.contract.violations) == []
    stored.data["importance"] = "normal"


def test_the_check_is_on_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_SWITCH, raising=False)
    assert ContractCheck.from_env().enabled
    monkeypatch.setenv(ENV_SWITCH, "0")
    off = ContractCheck.from_env()
    assert not off.enabled
    off.observe("GET", EVENT, 200, b'{"subjectLine": 1}', "application/json")
    assert list(off.violations) == []
