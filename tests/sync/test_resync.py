"""Recovering from what Graph does to a long-running sync: an expired delta token, a removed
subscription, throttling with Retry-After — and a safety net for each."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from shared.contracts.audit import AuditOperation, AuditRecorded
from shared.contracts.connections import ConnectionState, ConnectionStatusChanged
from shared.contracts.subscriptions import SubscriptionActivated
from shared.contracts.topics import (
    AUDIT,
    CONNECTION_COMMANDS,
    CONNECTIONS,
    NOTIFICATIONS,
    SUBSCRIPTIONS,
)
from tests.fixtures.connect import connect_user
from tests.fixtures.kafka import TopicReader
from tests.fixtures.waiting import eventually
from tests.sync.test_notifications import connected, create, slot
from tests.sync.world import World, event, subjects

pytestmark = pytest.mark.integration


def full_rounds(messages: list[object]) -> int:
    return sum(
        isinstance(m, AuditRecorded)
        and m.payload.operation is AuditOperation.DELTA_ROUND
        and (m.payload.detail or "").startswith("full")
        for m in messages
    )


async def test_an_expired_delta_token_means_one_full_resync(world: World) -> None:
    await connected(world)
    await create(world, "before", 1)
    await world.wait_read_model("ann", lambda d: subjects(d) == ["before"])
    world.emulator.state.calendars.delta_token_max_age = timedelta(seconds=1)
    await world.control("POST", "/clock/advance", json={"seconds": 5})
    async with TopicReader(world.settings, AUDIT) as reader:
        # The import's full round is on the audit topic (it was audited before "before"
        # could reach the read model); counted, not indexed: one poll may not read it all.
        await reader.wait_for(lambda m: full_rounds(m) >= 1)
        before = full_rounds(reader.messages)
        await create(world, "after expiry", 2)
        await world.wait_read_model("ann", lambda d: subjects(d) == ["after expiry", "before"])
        # The resync's audit record may land after its meetings: waited for, then counted.
        await reader.wait_for(lambda m: full_rounds(m) > before)
        assert full_rounds(reader.messages) == before + 1
    gone = await world.control("GET", "/requests", params={"path_contains": "calendarView/delta"})
    assert any(r["status"] == 410 for r in gone)


async def test_a_one_on_one_deleted_while_the_delta_token_expired_is_kept_as_cancelled(
    world: World,
) -> None:
    """The resync (a full round) doesn't list it: it was deleted, as an incremental round
    would have said — listed cancelled (cadence history), not dropped as out of window."""
    await connected(world)
    doomed = await create(world, "doomed", 1)
    await world.wait_read_model("ann", lambda d: subjects(d) == ["doomed"])
    await world.control("POST", "/notifications/pause")  # nobody hears of the deletion
    await world.as_user("DELETE", f"/me/events/{doomed}", world.cloud.manager.id)
    world.emulator.state.calendars.delta_token_max_age = timedelta(seconds=1)
    await world.control("POST", "/clock/advance", json={"seconds": 5})
    await create(world, "after expiry", 2)
    await world.sync_now("ann")

    def settled(docs: list[dict[str, object]]) -> bool:
        by_subject = {d["subject"]: d for d in docs}
        return set(by_subject) == {"doomed", "after expiry"} and bool(
            by_subject["doomed"]["is_cancelled"]
        )

    docs = await world.wait_read_model("ann", settled)
    assert [d["is_cancelled"] for d in docs] == [True, False]
    gone = await world.control("GET", "/requests", params={"path_contains": "calendarView/delta"})
    assert any(r["status"] == 410 for r in gone)


async def test_a_one_on_one_moved_beyond_the_window_is_moved_not_cancelled(world: World) -> None:
    """Graph's calendarView delta lists an event moved out of its range as removed, as it
    lists a deletion: the syncer reads the event to tell them apart. Moved: the meeting
    is published at its new time (then no longer followed); deleted: cancelled."""
    await connected(world)
    moved = await create(world, "moved far", 1)
    deleted = await create(world, "deleted", 2)
    await world.wait_read_model("ann", lambda d: subjects(d) == ["deleted", "moved far"])
    far = slot(45)
    await world.as_user(
        "PATCH",
        f"/me/events/{moved}",
        world.cloud.manager.id,
        json={
            "start": {"dateTime": far.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (far + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        },
    )
    await world.as_user("DELETE", f"/me/events/{deleted}", world.cloud.manager.id)

    def settled(docs: list[dict[str, object]]) -> bool:
        by_subject = {d["subject"]: d for d in docs}
        return (
            set(by_subject) == {"deleted", "moved far"}
            and bool(by_subject["deleted"]["is_cancelled"])
            and by_subject["moved far"]["start"] == far
        )

    docs = await world.wait_read_model("ann", settled)
    assert [(d["subject"], d["is_cancelled"]) for d in docs] == [
        ("deleted", True),
        ("moved far", False),
    ]


async def test_a_removed_subscription_is_recreated_and_changes_flow_again(world: World) -> None:
    await connected(world)
    (old,) = await world.subscriptions()
    await world.control("POST", "/notifications/pause")
    await create(world, "while removed", 1)  # its notification dies with the subscription
    async with TopicReader(world.settings, SUBSCRIPTIONS) as reader:
        await world.control(
            "POST",
            f"/subscriptions/{old['id']}/lifecycle",
            json={"lifecycleEvent": "subscriptionRemoved"},
        )
        await world.control("PATCH", "/notifications/controls", json={"paused": False})
        await world.control("POST", "/notifications/flush")
        await reader.wait_for(
            lambda m: any(
                isinstance(x, SubscriptionActivated) and x.payload.subscription_id != old["id"]
                for x in m
            )
        )
    (new,) = await world.subscriptions()
    assert new["id"] != old["id"]
    # The resync after recreating found the change made meanwhile; new changes notify again.
    await world.wait_read_model("ann", lambda d: subjects(d) == ["while removed"])
    await create(world, "after recreate", 2)
    await world.wait_read_model("ann", lambda d: "after recreate" in subjects(d))


async def test_throttling_is_honoured_and_never_exceeds_four_requests(world: World) -> None:
    await connected(world)
    await world.control("DELETE", "/requests")
    await world.control(
        "POST",
        "/faults",
        json={
            "path_regex": "calendarView/delta",
            "method": "GET",
            "status": 429,
            "retry_after": 1,
            "count": 2,
            "code": "ApplicationThrottled",
        },
    )
    await create(world, "despite throttling", 1)
    await world.wait_read_model("ann", lambda d: subjects(d) == ["despite throttling"])
    # Then Sync Now with a burst of changes: still serial per mailbox.
    for n in range(5):
        await create(world, f"more {n}", 2 + n)
    await world.sync_now("ann")
    await world.wait_read_model("ann", lambda d: len(d) == 6)
    log = await world.control("GET", "/requests", params={"limit": 5000})
    mine = [r for r in log if r["mailbox"] == world.cloud.manager.id]
    assert max(r["concurrency"] for r in mine) <= 4
    delta = [r for r in mine if "calendarView/delta" in r["path"]]
    throttled = [r for r in delta if r["status"] == 429]
    assert len(throttled) == 2
    # The retry waited for Retry-After (1 s) after each 429.
    after = [r for r in delta if r["at"] > throttled[0]["at"]]
    gap = datetime.fromisoformat(after[0]["at"]) - datetime.fromisoformat(throttled[0]["at"])
    assert gap >= timedelta(seconds=0.9)


async def test_a_throttled_mailbox_never_holds_up_another(world: World) -> None:
    """Ann's mailbox answers 429 to every delta round; Cy's 1:1s keep flowing meanwhile, and
    Ann's catch up once Graph lets her mailbox go."""
    await connected(world)
    tenant, bob = world.cloud.tenant, world.cloud.member
    cy = world.emulator.state.directory.add_user(tenant.id, "cy.manager@contoso.test", "Cy")
    await world.roster("cy", bob.mail, version=1)
    assert (await connect_user(world.emulator, world.settings, "cy", cy.mail)).status == "connected"
    await world.wait_read_model("cy", lambda d: d == [])
    # Cy's import ends with her subscription: from then on her changes are notified (an
    # event made before it and after the import's delta would wait for a timer round).
    await eventually(world.subscriptions, lambda s: len(s) == 2)
    stuck = await world.control(
        "POST",
        "/faults",
        json={
            "path_regex": "calendarView/delta",
            "status": 429,
            "retry_after": 3,
            "count": None,
            "mailbox": world.cloud.manager.id,
        },
    )
    await create(world, "ann waits", 1)
    start = slot(2)
    await world.as_user("POST", "/me/events", cy.id, json=event("cy flows", start, [bob.mail], "m"))
    await world.sync_now("ann")
    # Cy's 1:1 flows while Ann's mailbox is still refused (her round was tried: the fault
    # was hit — waited for too, as a busy machine may reach Cy's notification first).
    await world.wait_read_model("cy", lambda d: subjects(d) == ["cy flows"], timeout=45)

    async def stuck_hits() -> int:
        faults = await world.control("GET", "/faults")
        return int(next(f["hits"] for f in faults if f["id"] == stuck["id"]))

    await eventually(stuck_hits, lambda hits: hits >= 1)
    assert await world.one_on_ones("ann") == []
    await world.control("DELETE", f"/faults/{stuck['id']}")
    await world.wait_read_model("ann", lambda d: subjects(d) == ["ann waits"], timeout=60)


async def test_a_dead_refresh_token_pauses_the_connection_cleanly(world: World) -> None:
    await connected(world)
    await world.control("POST", f"/users/{world.cloud.manager.id}/revoke-refresh-tokens", json={})
    await world.control("POST", "/clock/advance", json={"hours": 3})  # access token expired
    async with TopicReader(world.settings, CONNECTIONS, AUDIT) as reader:
        await world.sync_now("ann")
        await reader.wait_for(
            lambda m: any(
                isinstance(x, ConnectionStatusChanged)
                and x.payload.state is ConnectionState.REAUTHORIZATION_REQUIRED
                for x in m
            )
        )
        await reader.wait_for(
            lambda m: any(
                isinstance(x, AuditRecorded)
                and x.payload.operation is AuditOperation.TOKEN_REFRESH_FAILED
                for x in m
            )
        )
    # The state is written after the events it promises (publish, then mark): waited for.
    (state,) = await eventually(
        lambda: world.mongo_docs("sync_state"),
        lambda docs: len(docs) == 1 and docs[0]["active"] is False and not docs[0].get("pending"),
    )
    assert state["active"] is False
    assert not state.get("pending")
    # Nothing looped into a dead-letter topic; further notices for it are ignored quietly.
    await create(world, "while paused", 1)
    await world.sync_now("ann")
    async with TopicReader(world.settings, CONNECTIONS) as reader:
        await reader.poll()
    for spec in (NOTIFICATIONS, CONNECTION_COMMANDS):
        dead = await world.dead_letters(spec)
        assert dead == [], spec.name
    assert await world.one_on_ones("ann") == []
