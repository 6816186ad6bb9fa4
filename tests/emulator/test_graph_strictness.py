"""The emulator refuses what Graph refuses (issue 14): the SDK's delta spellings, Graph's
error body for unknown routes / methods / bad input, query options it doesn't emulate, and
answers shaped like Graph's (one @odata.context, no unset transactionId, CSDL enums)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulators.msgraph.state import EmulatorState
from tests.emulator.calendar_fixtures import WINDOW, at, auth, create, full_round, meeting
from tests.emulator.conftest import Seed


def assert_graph_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Graph's error body (learn.microsoft.com/graph/errors), never FastAPI's {"detail"}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert response.headers["request-id"] == error["innerError"]["request-id"]
    return error


# --- 1. the SDK's delta spellings ------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "/v1.0/me/calendarView/delta()",
        "/v1.0/me/calendarView/microsoft.graph.delta()",
        "/v1.0/me/calendar/calendarView/delta()",
        "/v1.0/users/{ann}/calendarView/delta()",
        "/v1.0/users/{ann}/calendarView/microsoft.graph.delta()",
    ],
)
async def test_the_sdk_delta_spellings_work_as_delta(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed, spelling: str
) -> None:
    headers = auth(state, seed.ann.id)
    for day in ("2030-03-04", "2030-03-05", "2030-03-06"):
        await create(client, headers, meeting(**at(day, "09:00", "09:30")))
    paged = {**headers, "Prefer": "odata.maxpagesize=2"}
    url = spelling.format(ann=seed.ann.id)
    items, delta_link, pages = await full_round(client, paged, url, WINDOW)
    plain, _, _ = await full_round(client, paged, "/v1.0/me/calendarView/delta", WINDOW)
    assert pages == 2
    assert sorted(i["id"] for i in items) == sorted(i["id"] for i in plain)
    # The deltaLink it handed out keeps working (an incremental round, nothing changed).
    nothing, _, _ = await full_round(client, headers, delta_link.split(".test", 1)[1], None)
    assert nothing == []


# --- 3. unknown routes, methods and bad input: Graph's body ---------------------------------


async def test_an_unknown_segment_answers_graphs_bad_request(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = {**auth(state, seed.ann.id), "client-request-id": "cid-123"}
    response = await client.get("/v1.0/me/calendarz", headers=headers)
    error = assert_graph_error(response, 400, "BadRequest")
    assert error["message"] == "Resource not found for the segment 'calendarz'."
    assert error["innerError"]["client-request-id"] == "cid-123"
    assert response.headers["client-request-id"] == "cid-123"
    top = await client.get("/v1.0/nothingHere", headers=headers)
    assert assert_graph_error(top, 400, "BadRequest")["message"].endswith("'nothingHere'.")


async def test_a_graph_resource_the_emulator_lacks_answers_501(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    # /me/messages exists in Graph's metadata (a user navigation property): not emulated.
    error = assert_graph_error(
        await client.get("/v1.0/me/messages", headers=headers), 501, "notSupported"
    )
    assert "messages" in error["message"]
    event = await create(client, headers, meeting())
    attachments = await client.get(f"/v1.0/me/events/{event['id']}/attachments", headers=headers)
    assert_graph_error(attachments, 501, "notSupported")
    beta = await client.get("/beta/me/events", headers=headers)
    assert_graph_error(beta, 501, "notSupported")


async def test_a_method_the_resource_does_not_take_answers_405(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = {**auth(state, seed.ann.id), "client-request-id": "cid-405"}
    response = await client.put("/v1.0/me/calendarView/delta", headers=headers)
    error = assert_graph_error(response, 405, "ErrorInvalidRequest")
    assert error["message"] == "The OData request is not supported."
    assert error["innerError"]["client-request-id"] == "cid-405"
    assert response.headers["allow"] == "GET"
    assert "detail" not in response.text


async def test_validation_errors_answer_graphs_body(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = {**auth(state, seed.ann.id), "client-request-id": "cid-bad"}
    for bad in (b"{not json", b"[1, 2]"):
        response = await client.post(
            "/v1.0/me/events",
            content=bad,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert_graph_error(response, 400, "BadRequest")
    # An error raised by a handler echoes the caller's client-request-id too.
    missing = await client.get("/v1.0/me/events/AAMkNope", headers=headers)
    error = assert_graph_error(missing, 404, "ErrorItemNotFound")
    assert error["innerError"]["client-request-id"] == "cid-bad"
    assert missing.headers["client-request-id"] == "cid-bad"


async def test_the_control_api_keeps_its_own_errors(client: httpx.AsyncClient) -> None:
    """/_emulator is ours, not Graph: FastAPI's answers stay there."""
    response = await client.get("/_emulator/nothing")
    assert response.status_code == 404
    assert "detail" in response.json()


# --- 2. $filter / $orderby: emulated ones work, others are refused ---------------------------

TAG = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name SMVueManaged"


async def _three(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    tagged = {"singleValueExtendedProperties": [{"id": TAG, "value": "cmd-1"}]}
    return [
        await create(client, headers, meeting(subject="b", **at("2030-03-05", "09:00", "09:30"))),
        await create(
            client,
            headers,
            meeting(subject="a", **at("2030-03-06", "09:00", "09:30"), **tagged),
        ),
        await create(client, headers, meeting(subject="c", **at("2030-03-04", "09:00", "09:30"))),
    ]


@pytest.mark.parametrize(
    "option",
    [
        {"$filter": "contains(subject, 'a')"},
        {"$filter": "subject eq 'a' or subject eq 'b'"},
        {"$filter": "attendees/any(a: a/type eq 'required')"},
        {"$filter": "nonsense"},
        {"$orderby": "bodyPreview"},
        {"$orderby": "subject sideways"},
        {"$search": '"a"'},
        {"$count": "true"},
        {"$expand": "attachments"},
    ],
)
async def test_query_options_not_emulated_are_refused_never_ignored(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed, option: dict[str, str]
) -> None:
    headers = auth(state, seed.ann.id)
    await _three(client, headers)
    for url, params in (
        ("/v1.0/me/events", option),
        ("/v1.0/me/calendarView", {**WINDOW, **option}),
    ):
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code in (400, 501), (url, option, response.text)
        assert set(response.json()) == {"error"}


async def test_the_emulated_filters_and_orders_select_exactly(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    _, _, c = await _three(client, headers)

    async def subjects(url: str, **params: str) -> list[str]:
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [e["subject"] for e in response.json()["value"]]

    # "Its own" events: the documented extended-property filter (singlevaluelegacyextended
    # property-get: $filter=singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value
    # eq '…')).
    own = f"singleValueExtendedProperties/Any(ep: ep/id eq '{TAG}' and ep/value eq 'cmd-1')"
    assert await subjects("/v1.0/me/events", **{"$filter": own}) == ["a"]
    other = f"singleValueExtendedProperties/any(ep: ep/id eq '{TAG}' and ep/value eq 'x')"
    assert await subjects("/v1.0/me/events", **{"$filter": other}) == []
    assert await subjects("/v1.0/me/events", **{"$filter": "subject eq 'b'"}) == ["b"]
    after = "start/dateTime ge '2030-03-05T00:00:00' and subject ne 'a'"
    assert await subjects("/v1.0/me/calendarView", **WINDOW, **{"$filter": after}) == ["b"]
    assert await subjects("/v1.0/me/events", **{"$filter": f"iCalUId eq '{c['iCalUId']}'"}) == ["c"]
    assert await subjects("/v1.0/me/events", **{"$orderby": "subject desc"}) == ["c", "b", "a"]
    by_start = await subjects("/v1.0/me/calendarView", **WINDOW, **{"$orderby": "start/dateTime"})
    assert by_start == ["c", "b", "a"]
    assert await subjects(
        "/v1.0/me/events", **{"$orderby": "start/dateTime desc", "$top": "2"}
    ) == ["a", "b"]


async def test_delta_still_refuses_filter_and_orderby(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    for option in ({"$filter": "subject eq 'a'"}, {"$orderby": "subject"}):
        response = await client.get(
            "/v1.0/me/calendarView/delta()", params={**WINDOW, **option}, headers=headers
        )
        assert_graph_error(response, 400, "ErrorInvalidUrlQuery")


# --- 4. answers shaped like Graph's ----------------------------------------------------------


async def test_odata_context_once_per_answer_and_transaction_id_only_when_set(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    plain = await create(client, headers, meeting())
    assert "transactionId" not in plain
    assert plain["@odata.context"].endswith("/events/$entity")
    with_tx = await create(client, headers, meeting(transactionId="tx-9"))
    assert with_tx["transactionId"] == "tx-9"
    for url, params in (
        ("/v1.0/me/events", {}),
        ("/v1.0/me/calendarView", WINDOW),
        (f"/v1.0/me/events/{plain['id']}/instances", WINDOW),
    ):
        body = (await client.get(url, params=params, headers=headers)).json()
        assert "@odata.context" in body, url
        assert all("@odata.context" not in item for item in body["value"]), url
    listed = (await client.get("/v1.0/me/events", headers=headers)).json()["value"]
    assert [("transactionId" in e) for e in listed] == [False, True]
    one = (await client.get(f"/v1.0/me/events/{plain['id']}", headers=headers)).json()
    assert one["@odata.context"].endswith("/events/$entity")


async def test_calendar_enums_are_csdl_members(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    seed.bob.teams_licence = False
    calendar = (await client.get("/v1.0/me/calendar", headers=auth(state, seed.bob.id))).json()
    # onlineMeetingProviderType: unknown | skypeForBusiness | skypeForConsumer |
    # teamsForBusiness ("none" is not a member).
    assert calendar["defaultOnlineMeetingProvider"] == "unknown"
    assert calendar["allowedOnlineMeetingProviders"] == []


async def test_unlicensed_teams_is_quietly_downgraded_by_default(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    """Graph makes the event without a meeting for a user who can't have Teams
    (microsoftgraph/microsoft-graph-docs#9741, #22355); the refusal is a setting."""
    assert state.calendars.unlicensed_teams == "silent"
    seed.bob.teams_licence = False
    teams = {"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"}
    quiet = await client.post(
        "/v1.0/me/events", json=meeting(**teams), headers=auth(state, seed.bob.id)
    )
    assert quiet.status_code == 201
    assert quiet.json()["isOnlineMeeting"] is False
    assert quiet.json()["onlineMeeting"] is None
    await client.put("/_emulator/calendar/settings", json={"unlicensed_teams": "error"})
    refused = await client.post(
        "/v1.0/me/events", json=meeting(**teams), headers=auth(state, seed.bob.id)
    )
    assert_graph_error(refused, 400, "ErrorInvalidRequest")
    await client.post("/_emulator/reset")
    assert state.calendars.unlicensed_teams == "silent"
