"""Events CRUD, as the Graph v1.0 docs describe them (event resource, create, update,
delete, cancel, transactionId, If-Match, Teams, scopes)."""

from __future__ import annotations

from typing import Any

import httpx

from emulators.msgraph.state import EmulatorState
from tests.emulator.conftest import Seed

SMVUE_TAG = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name SMVueManaged"


def auth(state: EmulatorState, user_id: str, scopes: str = "Calendars.ReadWrite") -> dict[str, str]:
    return {"Authorization": f"Bearer {state.identity.mint_access_token(user_id, scopes)}"}


def meeting(**extra: Any) -> dict[str, Any]:
    return {
        "subject": "1:1 with Bob",
        "body": {"contentType": "HTML", "content": "<a href='https://smvue/prep/1'>prep</a>"},
        "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "Europe/Paris"},
        "end": {"dateTime": "2030-03-04T09:30:00", "timeZone": "Europe/Paris"},
        "attendees": [
            {"emailAddress": {"address": "bob@contoso.com", "name": "Bob"}, "type": "required"}
        ],
        **extra,
    }


async def test_create_returns_the_documented_shape_and_invites(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    response = await client.post(
        "/v1.0/me/events", json=meeting(), headers=auth(state, seed.ann.id)
    )
    assert response.status_code == 201
    event = response.json()
    assert event["type"] == "singleInstance"
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["start"] == {"dateTime": "2030-03-04T08:00:00.0000000", "timeZone": "UTC"}
    assert event["organizer"]["emailAddress"]["address"] == "ann@contoso.com"
    assert event["isOrganizer"] is True
    assert event["attendees"][0]["status"]["response"] == "none"
    assert event["originalStartTimeZone"] == "Europe/Paris"
    for name in ("iCalUId", "createdDateTime", "lastModifiedDateTime", "webLink", "bodyPreview"):
        assert name in event
    invitations = state.calendars.invitations
    assert [(i["kind"], i["to"]) for i in invitations] == [("request", "bob@contoso.com")]
    # The attendee exists in this cloud: the meeting lands in Bob's calendar too.
    bobs = state.calendars.events_of(seed.bob.id)
    assert len(bobs) == 1 and bobs[0].is_organizer is False


async def test_transaction_id_makes_a_retried_create_idempotent(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    first = await client.post(
        "/v1.0/me/events", json=meeting(transactionId="tx-1"), headers=headers
    )
    again = await client.post(
        "/v1.0/me/events", json=meeting(transactionId="tx-1"), headers=headers
    )
    assert first.json()["id"] == again.json()["id"]
    assert len(state.calendars.events_of(seed.ann.id)) == 1


async def test_teams_join_url_needs_a_licence(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    teams = {"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"}
    ok = await client.post(
        "/v1.0/me/events", json=meeting(**teams), headers=auth(state, seed.ann.id)
    )
    assert ok.status_code == 201
    assert ok.json()["onlineMeeting"]["joinUrl"].startswith("https://teams.microsoft.com/")
    seed.bob.teams_licence = False
    refused = await client.post(
        "/v1.0/me/events", json=meeting(**teams), headers=auth(state, seed.bob.id)
    )
    assert refused.status_code == 400
    assert "teamsForBusiness" in refused.json()["error"]["message"]
    calendar = await client.get("/v1.0/me/calendar", headers=auth(state, seed.bob.id))
    assert calendar.json()["allowedOnlineMeetingProviders"] == []


async def test_if_match_protects_against_concurrent_changes(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    event = (await client.post("/v1.0/me/events", json=meeting(), headers=headers)).json()
    moved = {
        "start": {"dateTime": "2030-03-05T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-03-05T09:30:00", "timeZone": "UTC"},
    }
    ok = await client.patch(
        f"/v1.0/me/events/{event['id']}",
        json=moved,
        headers={**headers, "If-Match": event["@odata.etag"]},
    )
    assert ok.status_code == 200
    assert ok.json()["changeKey"] != event["changeKey"]
    stale = await client.patch(
        f"/v1.0/me/events/{event['id']}",
        json={"subject": "x"},
        headers={**headers, "If-Match": event["@odata.etag"]},
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "ErrorIrresolvableConflict"


async def test_cancel_is_for_organizers_and_tells_attendees(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    event = (
        await client.post("/v1.0/me/events", json=meeting(), headers=auth(state, seed.ann.id))
    ).json()
    bob_copy = state.calendars.events_of(seed.bob.id)[0]
    not_organizer = await client.post(
        f"/v1.0/me/events/{bob_copy.id}/cancel", json={}, headers=auth(state, seed.bob.id)
    )
    assert not_organizer.status_code == 400
    cancelled = await client.post(
        f"/v1.0/me/events/{event['id']}/cancel",
        json={"Comment": "Moving this"},
        headers=auth(state, seed.ann.id),
    )
    assert cancelled.status_code == 202
    gone = await client.get(f"/v1.0/me/events/{event['id']}", headers=auth(state, seed.ann.id))
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ErrorItemNotFound"
    assert state.calendars.invitations[-1]["kind"] == "cancel"
    assert state.calendars.invitations[-1]["comment"] == "Moving this"
    bob_view = await client.get(f"/v1.0/me/events/{bob_copy.id}", headers=auth(state, seed.bob.id))
    assert bob_view.json()["isCancelled"] is True


async def test_scopes_and_tokens_are_enforced(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    no_token = await client.get("/v1.0/me/events")
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "InvalidAuthenticationToken"
    read_only = auth(state, seed.ann.id, "Calendars.Read")
    assert (await client.get("/v1.0/me/events", headers=read_only)).status_code == 200
    write = await client.post("/v1.0/me/events", json=meeting(), headers=read_only)
    assert write.status_code == 403
    assert write.json()["error"]["code"] == "ErrorAccessDenied"
    other_mailbox = await client.get(
        f"/v1.0/users/{seed.bob.id}/events", headers=auth(state, seed.ann.id)
    )
    assert other_mailbox.status_code == 403


async def test_extended_properties_come_back_only_when_expanded(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    body = meeting(singleValueExtendedProperties=[{"id": SMVUE_TAG, "value": "cmd-1"}])
    event = (await client.post("/v1.0/me/events", json=body, headers=headers)).json()
    plain = (await client.get(f"/v1.0/me/events/{event['id']}", headers=headers)).json()
    assert "singleValueExtendedProperties" not in plain
    expanded = await client.get(
        f"/v1.0/me/events/{event['id']}",
        params={
            "$expand": f"singleValueExtendedProperties($filter=id eq '{SMVUE_TAG}')",
            "$select": "subject",
        },
        headers=headers,
    )
    assert expanded.json()["singleValueExtendedProperties"] == [{"id": SMVUE_TAG, "value": "cmd-1"}]
    assert "body" not in expanded.json()  # $select honoured


async def test_unknown_properties_are_rejected(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    response = await client.post(
        "/v1.0/me/events", json=meeting(notAProperty=1), headers=auth(state, seed.ann.id)
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "RequestBodyRead"


async def test_changes_fire_notifications_through_the_change_feed(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    seen: list[tuple[str, str]] = []
    state.changes.subscribe(lambda change: seen.append((change.user_id, change.change_type)))
    headers = auth(state, seed.ann.id)
    event = (await client.post("/v1.0/me/events", json=meeting(), headers=headers)).json()
    await client.patch(f"/v1.0/me/events/{event['id']}", json={"subject": "x"}, headers=headers)
    await client.delete(f"/v1.0/me/events/{event['id']}", headers=headers)
    assert (seed.ann.id, "created") in seen
    assert (seed.ann.id, "updated") in seen
    assert (seed.ann.id, "deleted") in seen
