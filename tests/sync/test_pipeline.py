"""Outlook → real notifications → ingress → Kafka → syncer → meeting events → projector's
read model, with the emulator, the real broker and MongoDB server, and nothing faked."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from bson import encode

from shared.contracts.connections import ConnectionDisconnected
from shared.contracts.meetings import MeetingRemoved, MeetingUpserted
from shared.contracts.topics import ALL_TOPICS
from tests.fixtures.connect import SERVICE_TOKEN, connect_user
from tests.fixtures.kafka import TopicReader
from tests.fixtures.waiting import eventually
from tests.sync.world import World, event, subjects, utc_text

pytestmark = pytest.mark.integration


def cancelled(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(str(d["subject"]) for d in docs if d["is_cancelled"])


def next_slot(days: int, hour: int = 10) -> datetime:
    base = datetime.now(UTC) + timedelta(days=days)
    return base.replace(hour=hour, minute=0, second=0, microsecond=0)


async def test_one_on_ones_are_imported_and_follow_outlook(
    world: World, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = f"BODY-MARKER-{uuid.uuid4().hex}"
    ann, bob = world.cloud.manager, world.cloud.member
    world.emulator.state.directory.add_user(world.cloud.tenant.id, "cy@contoso.test", "Cy")
    await world.roster("ann", bob.mail, version=1)

    # Before connecting: a weekly 1:1 series, one occurrence moved, one cancelled; a past 1:1
    # (cadence); and events that are not 1:1s.
    soon = next_slot(2)
    weekly = event(
        "Ann / Bob weekly",
        soon,
        [bob.mail],
        marker,
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [soon.strftime("%A")]},
            "range": {
                "type": "numbered",
                "startDate": soon.date().isoformat(),
                "numberOfOccurrences": 4,
            },
        },
    )
    series = await world.as_user("POST", "/me/events", ann.id, json=weekly)
    occurrences = (
        await world.as_user(
            "GET",
            f"/me/events/{series['id']}/instances",
            ann.id,
            params={
                "startDateTime": soon.isoformat(),
                "endDateTime": (soon + timedelta(days=30)).isoformat(),
            },
        )
    )["value"]
    assert len(occurrences) == 4
    moved_to = soon + timedelta(days=7, hours=3)
    await world.as_user(
        "PATCH",
        f"/me/events/{occurrences[1]['id']}",
        ann.id,
        json={
            "start": {"dateTime": utc_text(moved_to), "timeZone": "UTC"},
            "end": {"dateTime": utc_text(moved_to + timedelta(minutes=30)), "timeZone": "UTC"},
        },
    )
    await world.as_user("POST", f"/me/events/{occurrences[2]['id']}/cancel", ann.id, json={})
    past = next_slot(-20)
    await world.as_user(
        "POST", "/me/events", ann.id, json=event("last month", past, [bob.mail], marker)
    )
    midnight = soon.replace(hour=0)
    not_one_on_ones = [
        event("three people", soon, [bob.mail, "cy@contoso.test"], marker),
        event("private", soon, [bob.mail], marker, sensitivity="private"),
        event(  # all-day events start and end at midnight (Graph refuses others)
            "all day",
            midnight,
            [bob.mail],
            marker,
            isAllDay=True,
            end={"dateTime": utc_text(midnight + timedelta(days=1)), "timeZone": "UTC"},
        ),
        event("not on the team", soon, ["cy@contoso.test"], marker),
    ]
    for body in not_one_on_ones:
        await world.as_user("POST", "/me/events", ann.id, json=body)

    outcome = await connect_user(world.emulator, world.settings, "ann", ann.mail)
    assert outcome.status == "connected"
    docs = await world.wait_read_model("ann", lambda d: len(d) == 4)
    assert subjects(docs) == ["Ann / Bob weekly"] * 3 + ["last month"]
    weekly_docs = [d for d in docs if d["subject"] == "Ann / Bob weekly"]
    assert sorted(d["event_type"] for d in weekly_docs) == ["exception", "occurrence", "occurrence"]
    assert {d["series_master_id"] for d in weekly_docs} == {series["id"]}
    assert moved_to in [d["start"].astimezone(UTC) for d in docs]
    assert all(d["member_email"] == bob.mail.lower() and d["source"] == "outlook" for d in docs)
    assert not any(d["is_cancelled"] for d in docs)

    # Outlook changes reach the read model through real notifications (the subscription is
    # made right after the import round, so it may trail the read model by a moment).
    await eventually(world.subscriptions, lambda s: len(s) == 1)
    new = await world.as_user(
        "POST", "/me/events", ann.id, json=event("new 1:1", next_slot(3, 15), [bob.mail], marker)
    )
    await world.wait_read_model("ann", lambda d: "new 1:1" in subjects(d))
    later = next_slot(4, 16)
    await world.as_user(
        "PATCH",
        f"/me/events/{new['id']}",
        ann.id,
        json={
            "subject": "moved 1:1",
            "start": {"dateTime": utc_text(later), "timeZone": "UTC"},
            "end": {"dateTime": utc_text(later + timedelta(minutes=30)), "timeZone": "UTC"},
        },
    )
    docs = await world.wait_read_model("ann", lambda d: "moved 1:1" in subjects(d))
    assert [d["start"].astimezone(UTC) for d in docs if d["subject"] == "moved 1:1"] == [later]
    # Cancelled or deleted: still there, flagged (the API lists it so, for cadence history).
    await world.as_user("POST", f"/me/events/{new['id']}/cancel", ann.id, json={"comment": "x"})
    await world.wait_read_model("ann", lambda d: cancelled(d) == ["moved 1:1"])
    other = await world.as_user(
        "POST", "/me/events", ann.id, json=event("to delete", next_slot(5), [bob.mail], marker)
    )
    await world.wait_read_model("ann", lambda d: "to delete" in subjects(d))
    await world.as_user("DELETE", f"/me/events/{other['id']}", ann.id)
    await world.wait_read_model("ann", lambda d: cancelled(d) == ["moved 1:1", "to delete"])
    # A third person joins a 1:1: it stops being one.
    third = await world.as_user(
        "POST", "/me/events", ann.id, json=event("grows", next_slot(6), [bob.mail], marker)
    )
    await world.wait_read_model("ann", lambda d: "grows" in subjects(d))
    await world.as_user(
        "PATCH",
        f"/me/events/{third['id']}",
        ann.id,
        json={
            "attendees": [
                {"emailAddress": {"address": a}, "type": "required"}
                for a in (bob.mail, "cy@contoso.test")
            ]
        },
    )
    await world.wait_read_model("ann", lambda d: "grows" not in subjects(d))

    # A roster change retracts, and restores, the member's meetings (no Graph data changed);
    # the cancelled ones are retracted too, and, gone from Outlook, don't come back.
    await world.roster("ann", version=2)
    await world.wait_read_model("ann", lambda d: d == [])
    await world.roster("ann", bob.mail.upper(), version=3)
    docs = await world.wait_read_model("ann", lambda d: len(d) == 4)
    assert subjects(docs) == ["Ann / Bob weekly"] * 3 + ["last month"]

    # The body's marker is nowhere: not on any topic, not in MongoDB, not in the logs.
    async with TopicReader(world.settings, *ALL_TOPICS) as reader:
        await reader.wait_for(lambda m: any(isinstance(x, MeetingUpserted) for x in m))
        await reader.poll()
        assert len(reader.raw) > 20
        assert all(marker.encode() not in raw for raw in reader.raw)
        assert any(isinstance(x, MeetingRemoved) for x in reader.messages)
    for collection in (
        "one_on_ones",
        "calendar_items",
        "sync_state",
        "subscriptions",
        "connections",
    ):
        docs_ = await world.mongo_docs(collection)
        assert docs_ or collection == "connections", collection
        assert all(marker.encode() not in encode(d) for d in docs_), collection
    captured = capfd.readouterr()
    assert marker not in captured.out + captured.err + caplog.text

    # Disconnect: the subscription is deleted in Graph, syncing stops, meetings stay.
    async with (
        TopicReader(world.settings, *ALL_TOPICS) as reader,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{world.settings.ingress_port}") as api,
    ):
        answer = await api.post(
            "/v1/connections/ann/disconnect", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
        )
        assert answer.status_code == 202
        await reader.wait_for(lambda m: any(isinstance(x, ConnectionDisconnected) for x in m))
    assert await world.subscriptions() == []
    assert len(await world.one_on_ones("ann")) == 4
    await world.as_user(
        "POST",
        "/me/events",
        ann.id,
        json=event("after disconnect", next_slot(7), [bob.mail], marker),
    )
    await world.sync_now("ann")
    state: dict[str, Any] = (await world.mongo_docs("sync_state"))[0]
    assert state["active"] is False
    assert "after disconnect" not in subjects(await world.one_on_ones("ann"))
