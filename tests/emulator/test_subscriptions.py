"""/v1.0/subscriptions against a real webhook receiver on loopback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from emulators.msgraph.changes import EventChange
from emulators.msgraph.state import EmulatorState
from emulators.msgraph.subscriptions.models import Subscription
from tests.emulator.calendar_fixtures import IMMUTABLE
from tests.emulator.conftest import Receiver, Seed, bearer
from tests.fixtures.waiting import eventually


def _body(receiver: Receiver, **overrides: object) -> dict[str, object]:
    expiry = datetime.now(UTC) + timedelta(days=2)
    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": f"{receiver.base_url}/notify",
        "lifecycleNotificationUrl": f"{receiver.base_url}/lifecycle",
        "resource": "me/events",
        "expirationDateTime": expiry.isoformat().replace("+00:00", "Z"),
        "clientState": "s3cret-state",
        **overrides,
    }


async def _create(
    client: httpx.AsyncClient,
    state: EmulatorState,
    seed: Seed,
    receiver: Receiver,
    *,
    immutable_ids: bool = True,
    **kw: object,
) -> dict[str, object]:
    """A subscription for Ann; by default with immutable ids, as the system asks (the
    stored ids these tests publish are immutable ids)."""
    headers = bearer(state, seed.ann) | (IMMUTABLE if immutable_ids else {})
    response = await client.post("/v1.0/subscriptions", json=_body(receiver, **kw), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_create_get_list_renew_delete(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    state = fast_delivery
    created = await _create(client, state, seed, receiver)
    assert receiver.validations == ["/notify", "/lifecycle"]
    for name in (
        "id",
        "resource",
        "applicationId",
        "changeType",
        "clientState",
        "notificationUrl",
        "lifecycleNotificationUrl",
        "expirationDateTime",
        "creatorId",
        "latestSupportedTlsVersion",
    ):
        assert name in created
    assert created["creatorId"] == seed.ann.id
    sub_id = created["id"]
    headers = bearer(state, seed.ann)
    assert (await client.get(f"/v1.0/subscriptions/{sub_id}", headers=headers)).status_code == 200
    listed = (await client.get("/v1.0/subscriptions", headers=headers)).json()["value"]
    assert [s["id"] for s in listed] == [sub_id]
    other_app = bearer(state, seed.ann, client_id="another-app")
    assert (await client.get("/v1.0/subscriptions", headers=other_app)).json()["value"] == []
    assert (await client.get(f"/v1.0/subscriptions/{sub_id}", headers=other_app)).status_code == 404
    later = (datetime.now(UTC) + timedelta(minutes=4200)).isoformat()
    renewed = await client.patch(
        f"/v1.0/subscriptions/{sub_id}", json={"expirationDateTime": later}, headers=headers
    )
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"].startswith(later[:19])
    assert (
        await client.delete(f"/v1.0/subscriptions/{sub_id}", headers=headers)
    ).status_code == 204
    assert (await client.get(f"/v1.0/subscriptions/{sub_id}", headers=headers)).status_code == 404


async def test_lifetime_follows_the_published_table_and_is_configurable(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    """Outlook events: at most 4230 minutes ("subscription resource type", Maximum length of
    subscription per resource type); beyond it Graph's own 400 ExtensionError message."""
    headers = bearer(fast_delivery, seed.ann)
    now = datetime.now(UTC)
    beyond = (now + timedelta(minutes=4240)).isoformat()
    refused = await client.post(
        "/v1.0/subscriptions", json=_body(receiver, expirationDateTime=beyond), headers=headers
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "ExtensionError"
    assert error["message"] == "Subscription expiration can only be 4230 minutes in the future."
    created = await _create(
        client,
        fast_delivery,
        seed,
        receiver,
        expirationDateTime=(now + timedelta(minutes=4220)).isoformat(),
    )
    renew_beyond = await client.patch(
        f"/v1.0/subscriptions/{created['id']}",
        json={"expirationDateTime": beyond},
        headers=headers,
    )
    assert renew_beyond.status_code == 400
    assert "4230 minutes" in renew_beyond.json()["error"]["message"]
    changed = await client.patch("/_emulator/notifications/settings", json={"max_lifetime": 10080})
    assert changed.status_code == 200, changed.text
    later = await client.post(
        "/v1.0/subscriptions", json=_body(receiver, expirationDateTime=beyond), headers=headers
    )
    assert later.status_code == 201, later.text


async def test_bad_bodies_are_rejected(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    headers = bearer(fast_delivery, seed.ann)
    too_far = (datetime.now(UTC) + timedelta(minutes=4231)).isoformat()
    cases = [
        {"expirationDateTime": too_far},
        {"expirationDateTime": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()},
        {"clientState": "x" * 129},
        {"notificationUrl": "http://example.com/notify"},
        {"changeType": "moved"},
        {"resource": "me/messages"},
        {"resource": f"users/{seed.bob.id}/events"},
    ]
    for overrides in cases:
        response = await client.post(
            "/v1.0/subscriptions", json=_body(receiver, **overrides), headers=headers
        )
        assert response.status_code in (400, 403), (overrides, response.text)
        assert "error" in response.json()
    ok = await client.post(
        "/v1.0/subscriptions",
        json=_body(
            receiver, resource=f"users/{seed.ann.user_principal_name}/events", clientState="x" * 128
        ),
        headers=headers,
    )
    assert ok.status_code == 201, ok.text


async def test_validation_failures(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    headers = bearer(fast_delivery, seed.ann)
    receiver.validation = "wrong"
    wrong = await client.post("/v1.0/subscriptions", json=_body(receiver), headers=headers)
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "ValidationError"
    receiver.validation = "slow"
    receiver.slow_seconds = 1.0
    slow = await client.post("/v1.0/subscriptions", json=_body(receiver), headers=headers)
    assert slow.status_code == 400 and slow.json()["error"]["code"] == "ValidationError"
    unreachable = _body(receiver, notificationUrl="http://127.0.0.1:9/notify")
    refused = await client.post("/v1.0/subscriptions", json=unreachable, headers=headers)
    assert refused.status_code == 400
    assert fast_delivery.subscriptions.subscriptions == {}


async def test_batched_delivery_shape(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    state = fast_delivery
    created = await _create(client, state, seed, receiver)
    for n, kind in enumerate(("created", "updated", "deleted")):
        state.changes.publish(EventChange(seed.ann.id, f"evt-{n}", kind))  # type: ignore[arg-type]
    state.changes.publish(EventChange(seed.bob.id, "not-annes", "created"))
    await receiver.wait_for(3, "/notify")
    await asyncio.sleep(0.1)
    assert len(receiver.batches) == 1, "three changes together arrive as one batch"
    items = receiver.items("/notify")
    assert [i["changeType"] for i in items] == ["created", "updated", "deleted"]
    first = items[0]
    assert first["subscriptionId"] == created["id"]
    assert first["clientState"] == "s3cret-state"
    assert first["tenantId"] == seed.tenant.id
    assert first["resource"] == f"Users/{seed.ann.id}/Events/evt-0"
    assert first["subscriptionExpirationDateTime"] == created["expirationDateTime"]
    data = first["resourceData"]
    assert isinstance(data, dict)
    assert data["@odata.type"] == "#Microsoft.Graph.Event"
    assert data["@odata.id"] == first["resource"] and data["id"] == "evt-0"
    assert str(data["@odata.etag"]).startswith('W/"')


async def test_retries_on_500_then_gives_up_with_missed(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    state = fast_delivery
    await _create(client, state, seed, receiver)
    receiver.statuses = [500, 503]
    state.changes.publish(EventChange(seed.ann.id, "evt-1", "created"))
    await receiver.wait_for(3, "/notify")

    async def statuses() -> list[int]:
        return [a.status for a in state.subscriptions.dispatcher.stats.attempts]

    # The dispatcher records an attempt once its answer is back, after the receiver saw it.
    attempts = await eventually(statuses, lambda seen: len(seen) >= 3)
    assert attempts == [500, 503, 202]
    receiver.statuses = [500, 500, 500]
    state.changes.publish(EventChange(seed.ann.id, "evt-2", "updated"))
    await receiver.wait_for(1, "/lifecycle")
    assert receiver.items("/lifecycle")[0]["lifecycleEvent"] == "missed"


async def test_lifecycle_notifications_and_expiry(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    state = fast_delivery
    soon = (datetime.now(UTC) + timedelta(minutes=90)).isoformat()
    created = await _create(client, state, seed, receiver, expirationDateTime=soon)
    fired = await client.post(
        f"/_emulator/subscriptions/{created['id']}/lifecycle", json={"lifecycleEvent": "missed"}
    )
    assert fired.json() == {"sent": True}
    ticked = (await client.post("/_emulator/clock/advance", json={"minutes": 31})).json()
    assert ticked["reauthorizationRequired"] == [created["id"]]
    await receiver.wait_for(2, "/lifecycle")
    events = [i["lifecycleEvent"] for i in receiver.items("/lifecycle")]
    assert events == ["missed", "reauthorizationRequired"]
    item = receiver.items("/lifecycle")[1]
    assert set(item) == {
        "subscriptionId",
        "subscriptionExpirationDateTime",
        "tenantId",
        "clientState",
        "lifecycleEvent",
    }
    # Expired: gone from the API and nothing is delivered for later changes.
    ticked = (await client.post("/_emulator/clock/advance", json={"minutes": 60})).json()
    assert ticked["expired"] == [created["id"]]
    headers = bearer(state, seed.ann)
    gone = await client.get(f"/v1.0/subscriptions/{created['id']}", headers=headers)
    assert gone.status_code == 404
    state.changes.publish(EventChange(seed.ann.id, "evt-late", "created"))
    await asyncio.sleep(0.2)
    assert receiver.items("/notify") == []


async def test_subscription_removed_and_drop_emits_missed(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    state = fast_delivery
    created = await _create(client, state, seed, receiver)
    await client.patch("/_emulator/notifications/controls", json={"drop_next": 1})
    state.changes.publish(EventChange(seed.ann.id, "evt-dropped", "created"))
    await receiver.wait_for(1, "/lifecycle")
    assert receiver.items("/lifecycle")[0]["lifecycleEvent"] == "missed"
    assert receiver.items("/notify") == []
    await client.post(
        f"/_emulator/subscriptions/{created['id']}/lifecycle",
        json={"lifecycleEvent": "subscriptionRemoved"},
    )
    await receiver.wait_for(2, "/lifecycle")
    assert receiver.items("/lifecycle")[1]["lifecycleEvent"] == "subscriptionRemoved"
    listed = await client.get("/v1.0/subscriptions", headers=bearer(state, seed.ann))
    assert listed.json()["value"] == []


async def test_pause_duplicate_reorder_flush(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    state = fast_delivery
    await _create(client, state, seed, receiver)
    await client.post("/_emulator/notifications/pause")
    await client.patch(
        "/_emulator/notifications/controls", json={"duplicate_next": 1, "reorder_next": 1}
    )
    state.changes.publish(EventChange(seed.ann.id, "a", "created"))
    state.changes.publish(EventChange(seed.ann.id, "b", "created"))
    await asyncio.sleep(0.2)
    assert receiver.batches == []
    flushed = await client.post("/_emulator/notifications/flush")
    assert flushed.json()["pending"] == 0
    ids = [i["resourceData"]["id"] for i in receiver.items("/notify")]  # type: ignore[index]
    assert ids == ["b", "a", "a"]


async def test_mailbox_cap_of_1000(
    client: httpx.AsyncClient, fast_delivery: EmulatorState, seed: Seed, receiver: Receiver
) -> None:
    state = fast_delivery
    expiry = state.clock.now() + timedelta(days=1)
    for n in range(1000):  # other apps' subscriptions count too
        state.subscriptions.subscriptions[f"s{n}"] = Subscription(
            id=f"s{n}",
            resource="me/events",
            mailbox_user_id=seed.ann.id,
            tenant_id=seed.tenant.id,
            change_type="created",
            notification_url="https://elsewhere.test/n",
            expiration=expiry,
            application_id=f"app-{n % 7}",
            creator_id=seed.ann.id,
        )
    response = await client.post(
        "/v1.0/subscriptions", json=_body(receiver), headers=bearer(state, seed.ann)
    )
    assert response.status_code == 403
    assert receiver.validations == []
    bob = await client.post(
        "/v1.0/subscriptions", json=_body(receiver), headers=bearer(state, seed.bob)
    )
    assert bob.status_code == 201
