"""Outlook ids: an event's default id changes when it moves between folders, its immutable
id (`Prefer: IdType="ImmutableId"`, learn.microsoft.com/graph/outlook-immutable-id) does
not. A client that forgets the header loses track of an event moved to Deleted Items and
back; one that sends it keeps the same id in reads, writes, delta and notifications."""

from __future__ import annotations

from typing import Any

import httpx

from emulators.msgraph.state import EmulatorState
from tests.emulator.calendar_fixtures import IMMUTABLE, WINDOW, auth, create, full_round, meeting
from tests.emulator.conftest import Receiver, Seed
from tests.emulator.test_subscriptions import _create


async def _move(client: httpx.AsyncClient, user: str, event_id: str) -> dict[str, Any]:
    """The person drags the event to Deleted Items and restores it."""
    response = await client.post(f"/_emulator/users/{user}/events/{event_id}/move")
    assert response.status_code == 200, response.text
    moved: dict[str, Any] = response.json()
    return moved


async def test_default_ids_change_on_a_move_immutable_ids_do_not(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    plain = auth(state, seed.ann.id)
    immutable = plain | IMMUTABLE
    created = await client.post("/v1.0/me/events", json=meeting(), headers=immutable)
    assert created.headers["Preference-Applied"] == 'IdType="ImmutableId"'
    immutable_id = created.json()["id"]
    default_id = (await client.get(f"/v1.0/me/events/{immutable_id}", headers=plain)).json()["id"]
    assert default_id != immutable_id  # two forms of one item's id
    assert (
        "Preference-Applied"
        not in (await client.get(f"/v1.0/me/events/{default_id}", headers=plain)).headers
    )

    moved = await _move(client, seed.ann.mail, default_id)
    assert moved["immutableId"] == immutable_id and moved["id"] != default_id

    stale = await client.get(f"/v1.0/me/events/{default_id}", headers=plain)
    assert stale.status_code == 404, "the old default id no longer names the event"
    stale_patch = await client.patch(
        f"/v1.0/me/events/{default_id}", json={"subject": "x"}, headers=plain
    )
    assert stale_patch.status_code == 404
    again = await client.get(f"/v1.0/me/events/{immutable_id}", headers=immutable)
    assert again.status_code == 200 and again.json()["id"] == immutable_id
    assert (await client.get(f"/v1.0/me/events/{immutable_id}", headers=plain)).json()[
        "id"
    ] == moved["id"]
    # Either form of the current id is accepted as input, answered in the asked form.
    updated = await client.patch(
        f"/v1.0/me/events/{moved['id']}", json={"subject": "after"}, headers=immutable
    )
    assert updated.status_code == 200 and updated.json()["id"] == immutable_id


async def test_delta_reports_a_moved_event_by_the_id_form_the_client_reads(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    plain = auth(state, seed.ann.id)
    immutable = plain | IMMUTABLE
    event = await create(client, immutable, meeting())
    items_plain, link_plain, _ = await full_round(client, plain, params=WINDOW)
    items_imm, link_imm, _ = await full_round(client, immutable, params=WINDOW)
    (before,) = [i["id"] for i in items_plain]
    assert [i["id"] for i in items_imm] == [event["id"]]

    moved = await _move(client, seed.ann.id, event["id"])

    changes_plain, _, _ = await full_round(client, plain, first=link_plain)
    removed = [i["id"] for i in changes_plain if "@removed" in i]
    present = [i["id"] for i in changes_plain if "@removed" not in i]
    assert removed == [before] and present == [moved["id"]]
    changes_imm, _, _ = await full_round(client, immutable, first=link_imm)
    assert [(i["id"], "@removed" in i) for i in changes_imm] == [(event["id"], False)]


async def test_notifications_carry_the_id_form_the_subscription_was_created_with(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    state = fast_delivery
    with_header = await _create(client, state, seed, receiver, immutable_ids=True)
    without = await _create(client, state, seed, receiver, immutable_ids=False)
    event = await create(client, auth(state, seed.ann.id) | IMMUTABLE, meeting())
    await receiver.wait_for(2, "/notify")
    moved = await _move(client, seed.ann.id, event["id"])
    await receiver.wait_for(4, "/notify")
    ids: dict[object, list[object]] = {}
    for item in receiver.items("/notify"):
        ids.setdefault(item["subscriptionId"], []).append(item["resourceData"]["id"])  # type: ignore[index]
    assert ids[with_header["id"]] == [event["id"], event["id"]]
    first, after_move = ids[without["id"]]
    assert first != event["id"] and after_move == moved["id"] and first != after_move
