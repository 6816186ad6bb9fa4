"""`smvue-sync read-model rebuild`: a replay into a fresh database while records keep
flowing equals the live read model; `--switch` makes the running projector read and write
it with no restart while the query API keeps answering; the old one is kept until
`drop-old`. Side-effect free: no topic but the ones the test publishes grows, the Graph
emulator sees no request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from services.projector.adapters.pointer import CONTROL
from shared.contracts.connections import connection_id_for
from shared.contracts.meetings import (
    MeetingRemoval,
    MeetingRemoved,
    MeetingSnapshot,
    MeetingSource,
    MeetingUpserted,
    Person,
    RemovalReason,
    meeting_id_for,
)
from shared.contracts.topics import ALL_TOPICS, MEETINGS
from shared.messaging.dlq import read_dead_letters
from shared.settings import Settings
from tests.fixtures.emulator import running_emulator
from tests.fixtures.services import build, running
from tests.operators.conftest import TOKEN, Doc, cli, end_offsets, eventually, publish
from tests.operators.test_dlq import card

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

CID = connection_id_for("ann")
NOW = datetime.now(UTC).replace(microsecond=0)
MEMBERS = ("bob@contoso.test", "cy@contoso.test", "dee@contoso.test")


def upsert(n: int, version: int, subject: str = "1:1") -> MeetingUpserted:
    member = MEMBERS[n % len(MEMBERS)]
    meeting_id = meeting_id_for(CID, f"ev{n}")
    start = NOW + timedelta(days=1 + n % 20, hours=n % 7)
    return MeetingUpserted.build(
        key=meeting_id,
        payload=MeetingSnapshot(
            meeting_id=meeting_id,
            connection_id=CID,
            manager_id="ann",
            member=Person(email=member, display_name=member.split("@")[0]),
            member_id=member.split("@")[0],
            graph_event_id=f"ev{n}",
            event_type="singleInstance",
            subject=subject,
            start=start,
            end=start + timedelta(minutes=30),
            source=MeetingSource.OUTLOOK,
            version=version,
        ),
    )


def removal(n: int, version: int) -> MeetingRemoved:
    meeting_id = meeting_id_for(CID, f"ev{n}")
    return MeetingRemoved.build(
        key=meeting_id,
        payload=MeetingRemoval(
            meeting_id=meeting_id,
            connection_id=CID,
            manager_id="ann",
            graph_event_id=f"ev{n}",
            reason=RemovalReason.DELETED,
            version=version,
        ),
    )


async def publish_poison(settings: Settings) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic(MEETINGS), b"{not json", key=b"poison")
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def reading_throughout(settings: Settings, at_least: int) -> AsyncIterator[list[Any]]:
    """Asks the query API all the time; yields what it answered (status, meetings)."""
    answers: list[Any] = []
    stop = asyncio.Event()
    url = f"http://127.0.0.1:{settings.projector_port}"

    async def read() -> None:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client:
            while not stop.is_set():
                response = await client.get(
                    "/v1/managers/ann/one-on-ones",
                    params={"from": NOW.isoformat(), "to": (NOW + timedelta(days=30)).isoformat()},
                )
                body = response.json() if response.status_code == 200 else {}
                answers.append((response.status_code, len(body.get("one_on_ones", []))))
                await asyncio.sleep(0.02)

    task = asyncio.create_task(read())
    try:
        yield answers
    finally:
        stop.set()
        await task
    assert answers, "the query API was never asked"
    assert {status for status, _ in answers} == {200}
    assert min(count for _, count in answers) >= at_least


async def test_rebuild_while_records_flow_switch_and_drop_old(
    settings: Settings, mongo: AsyncMongoClient[Doc]
) -> None:
    async with running_emulator() as emulator:
        settings = settings.model_copy(
            update={
                "graph_base_url": emulator.graph_url,
                "authority_host": emulator.authority_host,
                "ca_bundle": emulator.ca_bundle,
            }
        )
        home = mongo[settings.mongodb_database]
        into = f"{settings.mongodb_database}_rm_next"
        first: list[MeetingUpserted | MeetingRemoved] = [upsert(n, 1) for n in range(30)] + [
            upsert(n, 2, "moved") for n in range(0, 30, 3)
        ]
        first += [removal(n, 3) for n in range(1, 30, 7)]
        async with running(build("projector", settings)):
            await publish(settings, *first, card("ann"), card("bob"), card("ann", 2))
            await publish_poison(settings)
            await eventually(lambda: read_dead_letters(settings), lambda d: len(d) == 1)
            live_meetings = await eventually(
                lambda: home["one_on_ones"].count_documents({"version": {"$gte": 1}}),
                lambda n: n == 30,
            )
            assert live_meetings == 30
            await eventually(lambda: home["connections"].count_documents({}), lambda n: n == 2)
            visible = 30 - len(range(1, 30, 7))  # removed ones are not shown
            quiet = [settings.topic(spec) for spec in ALL_TOPICS if spec is not MEETINGS] + [
                settings.dead_letter_topic(spec) for spec in ALL_TOPICS if spec.has_dead_letter
            ]
            quiet_before = await end_offsets(settings, quiet)
            meetings_before = sum(
                (await end_offsets(settings, [settings.topic(MEETINGS)])).values()
            )

            async with reading_throughout(settings, at_least=visible):
                # Records keep flowing while the first rebuild runs.
                flowing = [upsert(n, 4, "flowing") for n in range(30, 45)]

                async def flow() -> None:
                    for i in range(0, len(flowing), 3):
                        await publish(settings, *flowing[i : i + 3])
                        await asyncio.sleep(0.1)

                flow_task = asyncio.create_task(flow())
                built = await cli(settings, "read-model", "rebuild", "--into", into)
                await flow_task
                assert built.exit_code in (0, 1), built.stderr
                assert "replayed" in built.stdout and "rec/s" in built.stderr
                assert "records not applied" in built.stdout  # the poison, listed
                assert (await cli(settings, "read-model", "status", "--json")).json()[
                    "database"
                ] == settings.mongodb_database  # not switched

                switched = await cli(
                    settings, "read-model", "rebuild", "--into", into, "--switch", "--json"
                )
                report = switched.json()
                assert switched.exit_code == 0, (switched.stderr, report)
                assert report["resumed"] is True
                assert report["verify"]["equal"] is True, report["verify"]
                counts = {
                    c["collection"]: c["rebuilt_count"] for c in report["verify"]["collections"]
                }
                assert counts == {"one_on_ones": 45, "connections": 2}
                [skipped] = report["skipped"]
                assert skipped["reason"] == "invalid_record"
                assert skipped["topic"] == settings.topic(MEETINGS)
                assert (
                    report["switched"] is True and report["previous"] == settings.mongodb_database
                )
                assert (
                    len(report["instances"]["switched"]) == 1 and not report["instances"]["lagging"]
                )
                # Resumed from its own group's commits: it read only what was left.
                assert all(p["position"] == p["end"] for p in report["catch_up"]["partitions"])
                assert report["catch_up"]["records"] < len(first) + len(flowing)

                # The running projector now writes and reads the new database.
                new = mongo[into]
                await publish(settings, upsert(50, 1, "after the switch"))
                await eventually(
                    lambda: new["one_on_ones"].count_documents({"subject": "after the switch"}),
                    lambda n: n == 1,
                )
                assert (
                    await home["one_on_ones"].count_documents({"subject": "after the switch"}) == 0
                )
                await home["one_on_ones"].delete_many({})  # the old one no longer serves
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{settings.projector_port}",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as client:
                    answer = (
                        await client.get(
                            "/v1/managers/ann/one-on-ones",
                            params={"to": (NOW + timedelta(days=30)).isoformat()},
                        )
                    ).json()
                    assert "after the switch" in {m["subject"] for m in answer["one_on_ones"]}
                    assert (await client.get("/v1/connections/ann")).status_code == 200

                status = (await cli(settings, "read-model", "status", "--json")).json()
                assert (
                    status["database"] == into and status["previous"] == settings.mongodb_database
                )
                assert [i["database"] for i in status["instances"]] == [into]

                refused = await cli(settings, "read-model", "rebuild", "--into", into)
                assert refused.exit_code == 4 and "live read model" in refused.stderr
                dropped = await cli(settings, "read-model", "drop-old", "--yes", "--json")
                assert dropped.exit_code == 0, dropped.stderr
                assert dropped.json() == {"dropped": settings.mongodb_database}
                left = set(await home.list_collection_names())
                assert not left & {"one_on_ones", "connections"}
                assert CONTROL in left  # the home database keeps everything else
                assert (await cli(settings, "read-model", "drop-old", "--yes")).exit_code == 3

        # Side-effect free: nothing published but what the test published, no Graph call.
        assert await end_offsets(settings, quiet) == quiet_before
        meetings_after = sum((await end_offsets(settings, [settings.topic(MEETINGS)])).values())
        assert meetings_after == meetings_before + len(flowing) + 1
        assert emulator.state.request_log.query() == []
