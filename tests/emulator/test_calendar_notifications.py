"""A change made through the Graph API (as the user in Outlook) is notified to subscribers,
with the event's current etag."""

from __future__ import annotations

import httpx

from emulators.msgraph.state import EmulatorState
from tests.emulator.calendar_fixtures import IMMUTABLE, at, auth, create, meeting, weekly
from tests.emulator.conftest import Receiver, Seed
from tests.emulator.test_subscriptions import _create


async def test_outlook_changes_reach_the_webhook(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    state = fast_delivery
    await _create(client, state, seed, receiver)
    headers = auth(state, seed.ann.id) | IMMUTABLE
    event = (await client.post("/v1.0/me/events", json=meeting(), headers=headers)).json()
    await receiver.wait_for(1, "/notify")
    first = receiver.items("/notify")[0]
    assert first["changeType"] == "created"
    assert first["resourceData"]["id"] == event["id"]  # type: ignore[index]
    assert first["resourceData"]["@odata.etag"] == event["@odata.etag"]  # type: ignore[index]
    await client.delete(f"/v1.0/me/events/{event['id']}", headers=headers)
    await receiver.wait_for(2, "/notify")
    assert receiver.items("/notify")[1]["changeType"] == "deleted"


async def test_occurrence_changes_publish_the_occurrence_and_its_series(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    seen: list[tuple[str, str, str]] = []
    state.changes.subscribe(lambda c: seen.append((c.user_id, c.event_id, c.change_type)))
    headers = auth(state, seed.ann.id) | IMMUTABLE  # the change feed carries stored ids
    body = meeting(recurrence=weekly("2030-03-04", count=3)) | at("2030-03-04", "10:00", "10:30")
    master = await create(client, headers, body)
    window = {"startDateTime": "2030-03-01T00:00:00Z", "endDateTime": "2030-04-01T00:00:00Z"}
    first, second, _ = (
        await client.get(
            f"/v1.0/me/events/{master['id']}/instances", params=window, headers=headers
        )
    ).json()["value"]
    seen.clear()
    await client.patch(f"/v1.0/me/events/{first['id']}", json={"subject": "x"}, headers=headers)
    await client.delete(f"/v1.0/me/events/{second['id']}", headers=headers)
    ann = [(e, c) for u, e, c in seen if u == seed.ann.id]
    assert ann == [
        (first["id"], "updated"),
        (master["id"], "updated"),
        (second["id"], "deleted"),
        (master["id"], "updated"),
    ]
    bob_copy = state.calendars.events_of(seed.bob.id)[0]
    bob = [(e, c) for u, e, c in seen if u == seed.bob.id]
    assert (bob_copy.id, "updated") in bob
    assert any(e.startswith(f"{bob_copy.id}.OCC") for e, _ in bob)  # the attendee's occurrence
