"""Events CRUD, as the Graph v1.0 docs describe them (event resource, create, update,
delete, cancel, transactionId, If-Match, Teams, scopes)."""

from __future__ import annotations

import httpx

from emulators.msgraph.state import EmulatorState
from tests.emulator.calendar_fixtures import (
    BODY_MARKER,
    SMVUE_TAG,
    at,
    auth,
    create,
    meeting,
    weekly,
)
from tests.emulator.conftest import Seed

# Every property of the v1.0 `event` entity (graph-v1.0-calendar-types.csdl.xml) that Graph
# returns by default, plus the annotations (transactionId only when it was set, as in the
# user-post-events examples).
EVENT_PROPERTIES = {
    "@odata.etag", "@odata.context", "id", "createdDateTime", "lastModifiedDateTime",
    "changeKey", "categories", "originalStartTimeZone", "originalEndTimeZone",
    "iCalUId", "reminderMinutesBeforeStart", "isReminderOn", "hasAttachments", "subject",
    "bodyPreview", "importance", "sensitivity", "isAllDay", "isCancelled", "isOrganizer",
    "responseRequested", "seriesMasterId", "showAs", "type", "webLink", "onlineMeetingUrl",
    "isOnlineMeeting", "onlineMeetingProvider", "allowNewTimeProposals", "isDraft",
    "hideAttendees", "responseStatus", "body", "start", "end", "location", "locations",
    "recurrence", "attendees", "organizer", "onlineMeeting",
}  # fmt: skip


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
    assert set(event) == EVENT_PROPERTIES  # exactly the CSDL names, nothing invented
    assert event["body"]["contentType"] == "html"  # bodyType members are lowercase
    assert BODY_MARKER in event["body"]["content"]
    assert event["bodyPreview"] == f"Prep notes {BODY_MARKER}"  # plain text, no markup
    assert "transactionId" not in event
    assert event["location"]["locationType"] == "default"
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
    assert again.json()["transactionId"] == "tx-1"
    assert len(state.calendars.events_of(seed.ann.id)) == 1
    assert len(state.calendars.events_of(seed.bob.id)) == 1  # one invitation, not two
    # "After you set transactionId when creating an event, you can't change it."
    changed = await client.patch(
        f"/v1.0/me/events/{first.json()['id']}", json={"transactionId": "tx-2"}, headers=headers
    )
    assert changed.status_code == 400


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
    strict = await client.put("/_emulator/calendar/settings", json={"unlicensed_teams": "error"})
    assert strict.json()["unlicensed_teams"] == "error"  # the strict setting (default: silent)
    refused = await client.post(
        "/v1.0/me/events", json=meeting(**teams), headers=auth(state, seed.bob.id)
    )
    assert refused.status_code == 400
    assert "teamsForBusiness" in refused.json()["error"]["message"]
    calendar = await client.get("/v1.0/me/calendar", headers=auth(state, seed.bob.id))
    assert calendar.json()["allowedOnlineMeetingProviders"] == []
    # The quiet downgrade Graph shows (201, no meeting) is the default, set back through the
    # control API for an emulator run as a process.
    knob = await client.put("/_emulator/calendar/settings", json={"unlicensed_teams": "silent"})
    assert knob.json()["unlicensed_teams"] == "silent"
    assert state.calendars.unlicensed_teams == "silent"
    bad = await client.put("/_emulator/calendar/settings", json={"unlicensed_teams": "maybe"})
    assert bad.status_code == 422
    quiet = await client.post(
        "/v1.0/me/events", json=meeting(**teams), headers=auth(state, seed.bob.id)
    )
    assert quiet.status_code == 201
    assert quiet.json()["isOnlineMeeting"] is False
    assert quiet.json()["onlineMeetingProvider"] == "unknown"
    assert quiet.json()["onlineMeeting"] is None


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
    stale_delete = await client.delete(
        f"/v1.0/me/events/{event['id']}", headers={**headers, "If-Match": event["@odata.etag"]}
    )
    assert stale_delete.status_code == 412
    current = ok.json()["@odata.etag"]
    deleted = await client.delete(
        f"/v1.0/me/events/{event['id']}", headers={**headers, "If-Match": current}
    )
    assert deleted.status_code == 204


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


async def test_unknown_ids_are_item_not_found(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    event = await create(client, headers, meeting())
    for method, url in [
        ("GET", "/v1.0/me/events/AAMkAGnope"),
        ("PATCH", "/v1.0/me/events/AAMkAGnope"),
        ("DELETE", "/v1.0/me/events/AAMkAGnope"),
        ("POST", "/v1.0/me/events/AAMkAGnope/cancel"),
        ("GET", f"/v1.0/me/events/{event['id']}.OCCbm9wZQ"),  # not an occurrence id
    ]:
        response = await client.request(method, url, json={}, headers=headers)
        assert response.status_code == 404, (method, url)
        assert response.json()["error"] == {
            **response.json()["error"],
            "code": "ErrorItemNotFound",
            "message": "The specified object was not found in the store.",
        }


async def test_invalid_enum_members_are_rejected(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    for bad in ({"sensitivity": "secret"}, {"showAs": "away"}, {"importance": "urgent"}):
        response = await client.post("/v1.0/me/events", json=meeting(**bad), headers=headers)
        assert response.status_code == 400, bad


async def test_user_and_calendar_resources(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id, "Calendars.ReadWrite User.Read")
    me = (await client.get("/v1.0/me", headers=headers)).json()
    assert me["id"] == seed.ann.id
    assert me["userPrincipalName"] == "ann@contoso.com"
    assert me["displayName"] == "Ann Archer"
    by_upn = await client.get(
        "/v1.0/users/ANN@contoso.com", params={"$select": "id,mail"}, headers=headers
    )
    assert {k for k in by_upn.json() if not k.startswith("@")} == {"id", "mail"}
    calendar = (await client.get("/v1.0/me/calendar", headers=headers)).json()
    assert calendar["isDefaultCalendar"] is True and calendar["canEdit"] is True
    assert calendar["owner"] == {"name": "Ann Archer", "address": "ann@contoso.com"}
    calendars = (await client.get(f"/v1.0/users/{seed.ann.id}/calendars", headers=headers)).json()
    assert [c["id"] for c in calendars["value"]] == [calendar["id"]]


async def test_users_path_reaches_the_same_mailbox(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = auth(state, seed.ann.id)
    event = await create(client, headers, meeting())
    via_upn = await client.get(
        f"/v1.0/users/ann@contoso.com/events/{event['id']}",
        params={"$select": "subject,start"},
        headers=headers,
    )
    assert via_upn.status_code == 200
    assert set(via_upn.json()) == {"@odata.etag", "@odata.context", "id", "subject", "start"}
    nobody = await client.get("/v1.0/users/nobody@contoso.com/events", headers=headers)
    assert nobody.status_code == 404
    assert nobody.json()["error"]["code"] == "ErrorInvalidUser"
    listed = await client.get("/v1.0/me/events", params={"$top": "1"}, headers=headers)
    assert [e["id"] for e in listed.json()["value"]] == [event["id"]]


async def test_cancelling_one_occurrence_tells_the_attendee(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    ann = auth(state, seed.ann.id)
    bob = auth(state, seed.bob.id)
    body = meeting(recurrence=weekly("2030-03-04", count=3))
    body |= at("2030-03-04", "10:00", "10:30")
    master = await create(client, ann, body)
    window = {"startDateTime": "2030-03-01T00:00:00Z", "endDateTime": "2030-04-01T00:00:00Z"}
    occurrences = (
        await client.get(f"/v1.0/me/events/{master['id']}/instances", params=window, headers=ann)
    ).json()["value"]
    assert [o["type"] for o in occurrences] == ["occurrence"] * 3
    cancelled = await client.post(
        f"/v1.0/me/events/{occurrences[1]['id']}/cancel", json={"Comment": "Off"}, headers=ann
    )
    assert cancelled.status_code == 202
    assert state.calendars.invitations[-1]["occurrence"] is not None
    assert state.calendars.invitations[-1]["comment"] == "Off"
    mine = (await client.get("/v1.0/me/calendarView", params=window, headers=ann)).json()
    assert len(mine["value"]) == 2  # gone from the organizer's calendar
    theirs = (await client.get("/v1.0/me/calendarView", params=window, headers=bob)).json()
    assert [o["isCancelled"] for o in theirs["value"]] == [False, True, False]
    assert {o["isOrganizer"] for o in theirs["value"]} == {False}
    assert theirs["value"][0]["organizer"]["emailAddress"]["address"] == "ann@contoso.com"


async def test_outlook_timezone_applies_to_write_responses(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    headers = {**auth(state, seed.ann.id), "Prefer": 'outlook.timezone="W. Europe Standard Time"'}
    created = await client.post("/v1.0/me/events", json=meeting(), headers=headers)
    assert created.headers["Preference-Applied"] == 'outlook.timezone="W. Europe Standard Time"'
    assert created.json()["start"] == {
        "dateTime": "2030-03-04T09:00:00.0000000",
        "timeZone": "W. Europe Standard Time",
    }
    unknown = await client.get(
        f"/v1.0/me/events/{created.json()['id']}",
        headers={**headers, "Prefer": 'outlook.timezone="Mars/Olympus"'},
    )
    assert unknown.status_code == 400
