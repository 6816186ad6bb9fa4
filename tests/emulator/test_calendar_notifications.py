"""A change made through the Graph API (as the user in Outlook) is notified to subscribers,
with the event's current etag."""

from __future__ import annotations

import httpx

from emulators.msgraph.state import EmulatorState
from tests.emulator.conftest import Receiver, Seed
from tests.emulator.test_calendar_events import auth, meeting
from tests.emulator.test_subscriptions import _create


async def test_outlook_changes_reach_the_webhook(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    state = fast_delivery
    await _create(client, state, seed, receiver)
    headers = auth(state, seed.ann.id)
    event = (await client.post("/v1.0/me/events", json=meeting(), headers=headers)).json()
    await receiver.wait_for(1, "/notify")
    first = receiver.items("/notify")[0]
    assert first["changeType"] == "created"
    assert first["resourceData"]["id"] == event["id"]  # type: ignore[index]
    assert first["resourceData"]["@odata.etag"] == event["@odata.etag"]  # type: ignore[index]
    await client.delete(f"/v1.0/me/events/{event['id']}", headers=headers)
    await receiver.wait_for(2, "/notify")
    assert receiver.items("/notify")[1]["changeType"] == "deleted"
