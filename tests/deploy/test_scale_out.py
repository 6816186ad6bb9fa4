"""Scale-out on this machine: several `smvue-sync run <service>` processes per service (the
production wiring, each with its own port) on the real Kafka broker and MongoDB server,
behind a round-robin TCP proxy standing in for the Kubernetes Service; the Graph emulator
as Microsoft. Mailboxes connect, Outlook changes and SMVue commands flow, and mid-run one
instance of every service is killed (SIGKILL) and another started.

Then: every consumer group was rebalanced onto the live instances (each partition owned by
exactly one of them, the killed member gone, the new one in), no mailbox ever saw more than
4 concurrent Graph requests (the emulator's request log), every 1:1 is in the read model
exactly once and every command made exactly one Outlook event, and every instance reports
its consumer lag on /metrics.

Default: 2 instances of each service, 12 mailboxes. SMVUE_SCALE_OUT=full: 3 ingress,
3 syncer, 2 writer, 3 projector and 30 mailboxes (the shape issue 12 asks for).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from pymongo import AsyncMongoClient

from emulators.msgraph.requestlog import RequestLog
from emulators.msgraph.state import EmulatorState
from shared.contracts.topics import COMMAND_OUTCOMES, ROSTER, TopicSpec
from shared.infra.endpoints import InfraEndpoints
from shared.settings import Settings
from tests.deploy.test_manifests import CONSUMED, consumer_group
from tests.fixtures.cluster import ROOT, Cluster, Instance, RoundRobin, eventually
from tests.fixtures.connect import (
    SERVICE_TOKEN,
    connect_user,
    connected_settings,
    seed_cloud,
    with_app,
)
from tests.fixtures.emulator import RunningEmulator, running_emulator
from tests.fixtures.services import create_topics

pytestmark = pytest.mark.integration

SERVICES = ("projector", "syncer", "writer", "ingress")  # start order
# The ingress consumes too (command outcomes, rosters): its groups are checked as well.
GROUPS: dict[str, tuple[TopicSpec, ...]] = {**CONSUMED, "ingress": (COMMAND_OUTCOMES, ROSTER)}
LAG_METRIC = "smvue_consumer_lag"


@dataclass(frozen=True)
class Shape:
    instances: dict[str, int]
    mailboxes: int


SHAPES = {
    "small": Shape({"ingress": 2, "syncer": 2, "writer": 2, "projector": 2}, mailboxes=12),
    "full": Shape({"ingress": 3, "syncer": 3, "writer": 2, "projector": 3}, mailboxes=30),
}
SHAPE = SHAPES[os.environ.get("SMVUE_SCALE_OUT", "small")]


# --- consumer groups on the broker ------------------------------------------------------


@dataclass(frozen=True)
class GroupView:
    state: str
    members: dict[str, set[tuple[str, int]]]  # member id → assigned (topic, partition)


async def describe(admin: AIOKafkaAdminClient, group: str) -> GroupView:
    (response,) = await admin.describe_consumer_groups([group])
    (entry,) = response.groups
    _error, _group_id, state, _protocol_type, _protocol, members = entry[:6]
    assigned: dict[str, set[tuple[str, int]]] = {}
    for member in members:
        member_id, assignment = member[0], member[-1]
        owned: set[tuple[str, int]] = set()
        if assignment:
            decoded = ConsumerProtocolMemberAssignment.decode(assignment)
            for topic, partitions in decoded.assignment:
                owned.update((topic, p) for p in partitions)
        assigned[member_id] = owned
    return GroupView(state, assigned)


def groups_of(settings: Settings) -> dict[str, list[tuple[str, TopicSpec]]]:
    """service → [(group id as the running services name it, topic spec)]."""
    return {
        service: [(consumer_group(service, spec), spec) for spec in specs]
        for service, specs in GROUPS.items()
    }


async def settled(
    admin: AIOKafkaAdminClient, cluster: Cluster, settings: Settings
) -> dict[str, GroupView] | None:
    """Every group Stable with exactly the live instances as members, each partition
    owned by exactly one of them; None while not so."""
    views: dict[str, GroupView] = {}
    for service, groups in groups_of(settings).items():
        for group, spec in groups:
            view = await describe(admin, settings.topic_prefix + group)
            if view.state != "Stable" or len(view.members) != len(cluster.live(service)):
                return None
            owned = [tp for tps in view.members.values() for tp in tps]
            expected = {(settings.topic(spec), p) for p in range(spec.partitions)}
            if sorted(owned) != sorted(expected):
                return None
            views[group] = view
    return views


# --- the world --------------------------------------------------------------------------


@dataclass
class Mailbox:
    user_id: str  # SMVue's manager id
    mail: str
    graph_id: str
    member_mail: str
    member_name: str


@contextlib.asynccontextmanager
async def scaled_out(
    infra: InfraEndpoints, tmp_path: Path, shape: Shape = SHAPE
) -> AsyncIterator[tuple[Cluster, RunningEmulator, list[Mailbox]]]:
    """The emulator, the mailboxes of `shape` (not connected yet) and every service's
    instances as processes behind the proxy (the chaos suite uses it too)."""
    state = EmulatorState(request_log=RequestLog(capacity=500_000))
    async with running_emulator(state) as emulator:
        delivery = emulator.state.subscriptions.settings
        delivery.batch_window_seconds = 0.05
        delivery.retry_base_seconds = 0.2
        proxy = RoundRobin()
        edge = await proxy.start()
        base = connected_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri, emulator)
        settings = base.model_copy(
            update={
                "public_base_url": f"http://127.0.0.1:{edge}",
                "oauth_redirect_uri": f"http://127.0.0.1:{edge}/oauth/outlook/callback",
                "ingress_port": edge,  # what clients (and connect_user) call: the proxy
            }
        )
        cloud = seed_cloud(emulator, settings.oauth_redirect_uri)
        settings = with_app(settings, cloud)
        directory = emulator.state.directory
        mailboxes = []
        for n in range(shape.mailboxes):
            user = directory.add_user(cloud.tenant.id, f"m{n}@contoso.test", f"Manager {n}")
            directory.add_user(cloud.tenant.id, f"t{n}@contoso.test", f"Member {n}")
            mailboxes.append(
                Mailbox(f"m{n}", user.mail, user.id, f"t{n}@contoso.test", f"Member {n}")
            )
        await create_topics(settings)  # the registry's partitions (6; rosters 3)
        cluster = Cluster(settings, tmp_path, proxy)
        try:
            for service in SERVICES:
                await asyncio.gather(
                    *(cluster.start(service) for _ in range(shape.instances[service]))
                )
            yield cluster, emulator, mailboxes
        finally:
            await cluster.stop()
            await proxy.stop()
            mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
            await mongo.drop_database(settings.mongodb_database)
            await mongo.close()


async def connect_all(
    client: httpx.AsyncClient,
    emulator: RunningEmulator,
    settings: Settings,
    mailboxes: list[Mailbox],
) -> None:
    """Each manager's team roster through the ingress API, then every mailbox connects."""
    for mailbox in mailboxes:
        put = await client.put(
            f"/v1/managers/{mailbox.user_id}/roster",
            json={
                "members": [
                    {
                        "member_id": f"t-{mailbox.user_id}",
                        "email": mailbox.member_mail,
                        "display_name": mailbox.member_name,
                    }
                ],
                "version": 1,
            },
        )
        assert put.status_code == 202, put.text
    gate = asyncio.Semaphore(4)

    async def connect(mailbox: Mailbox) -> str:
        async with gate:
            outcome = await connect_user(emulator, settings, mailbox.user_id, mailbox.mail)
            return outcome.status if outcome.status == "connected" else f"{outcome}"

    statuses = await asyncio.gather(*(connect(m) for m in mailboxes))
    assert statuses == ["connected"] * len(mailboxes), statuses


def api(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.ingress_port}",
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        timeout=20,
    )


def slot(days: int, hour: int) -> datetime:
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def outlook_event(subject: str, start: datetime, attendee: str) -> dict[str, Any]:
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "subject": subject,
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": attendee}, "type": "required"}],
    }


async def as_user(
    emulator: RunningEmulator, mailbox: Mailbox, method: str, path: str, **kw: Any
) -> Any:
    token = emulator.state.identity.mint_access_token(mailbox.graph_id, "Calendars.ReadWrite")
    async with emulator.client() as graph:
        answer = await graph.request(
            method, f"/v1.0{path}", headers={"Authorization": f"Bearer {token}"}, **kw
        )
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None


async def schedule(
    client: httpx.AsyncClient, mailbox: Mailbox, command_id: str, start: datetime
) -> None:
    answer = await client.post(
        "/v1/commands/schedule",
        json={
            "command_id": command_id,
            "manager_id": mailbox.user_id,
            "member_name": mailbox.member_name,
            "member_email": mailbox.member_mail,
            "start": start.replace(tzinfo=None).isoformat(),
            "time_zone": "UTC",
            "meeting_type": "30min",
            "add_teams_link": False,
            "prep_url": "https://app.smvue.test/prep/1",
        },
    )
    assert answer.status_code == 202, answer.text


async def change_traffic(
    client: httpx.AsyncClient, emulator: RunningEmulator, mailboxes: list[Mailbox], phase: int
) -> None:
    """Per mailbox: one new 1:1 in Outlook and one scheduled from SMVue."""
    gate = asyncio.Semaphore(6)

    async def one(mailbox: Mailbox) -> None:
        async with gate:
            await as_user(
                emulator,
                mailbox,
                "POST",
                "/me/events",
                json=outlook_event(
                    f"{mailbox.user_id} outlook {phase}", slot(2, 8 + phase), mailbox.member_mail
                ),
            )
            await schedule(client, mailbox, f"{mailbox.user_id}-cmd-{phase}", slot(1, 8 + phase))

    await asyncio.gather(*(one(m) for m in mailboxes))


def expected_read_model(mailbox: Mailbox, phases: int) -> list[tuple[str, datetime]]:
    rows = []
    for phase in range(1, phases + 1):
        rows.append((f"{mailbox.user_id} outlook {phase}", slot(2, 8 + phase)))
        rows.append((f"1:1 with {mailbox.member_name}", slot(1, 8 + phase)))
    return sorted(rows)


async def read_models(settings: Settings) -> dict[str, list[tuple[str, datetime]]]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    try:
        found: dict[str, list[tuple[str, datetime]]] = {}
        collection = mongo[settings.mongodb_database]["one_on_ones"]
        async for doc in collection.find({"removed": False}):
            found.setdefault(doc["manager_id"], []).append(
                (str(doc["subject"]), doc["start"].astimezone(UTC))
            )
        return {k: sorted(v) for k, v in found.items()}
    finally:
        await mongo.close()


async def lag_reported(instance: Instance, settings: Settings) -> bool:
    """The instance's /metrics has the consumer-lag gauge, for its own groups only.

    A series is per (group, topic, partition) the instance owns: with more instances than a
    topic has partitions, an instance owns none of that group's partitions and has no lag of
    it to report, so "reports its lag" means at least one series, each of its own groups."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{instance.port}") as client:
        text = (await client.get("/metrics")).text
    lines = [line for line in text.splitlines() if line.startswith(LAG_METRIC + "{")]
    wanted = {settings.topic_prefix + group for group, _ in groups_of(settings)[instance.service]}
    groups = {line.split('group="', 1)[1].split('"', 1)[0] for line in lines if 'group="' in line}
    return bool(groups) and groups <= wanted


def overlapping_delta_requests(records: list[Any]) -> list[tuple[str, str, str]]:
    """(mailbox, start, start) of delta requests of one mailbox in flight at once."""
    by_mailbox: dict[str, list[tuple[datetime, datetime]]] = {}
    for r in records:
        if r.mailbox and "delta" in r.path:
            end = r.at + timedelta(milliseconds=r.duration_ms)
            by_mailbox.setdefault(r.mailbox, []).append((r.at, end))
    found = []
    for mailbox, spans in by_mailbox.items():
        spans.sort()
        for (start, end), (next_start, _) in itertools.pairwise(spans):
            if next_start < end:
                found.append((mailbox, start.isoformat(), next_start.isoformat()))
    return found


def lag_metric_exists() -> bool:
    """Whether the shared consumer exports the gauge yet (issue 12 relies on the consumer
    work for it; until it lands on main the lag check has nothing to read)."""
    return any(LAG_METRIC in p.read_text() for p in (ROOT / "shared").rglob("*.py"))


async def test_scale_out_survives_losing_an_instance_of_each_service(
    infra: InfraEndpoints, tmp_path: Path
) -> None:
    began = time.monotonic()
    async with scaled_out(infra, tmp_path) as (cluster, emulator, mailboxes):
        settings = cluster.settings
        started = time.monotonic() - began
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            async with api(settings) as client:
                # Team rosters (through the ingress API), then every mailbox connects.
                await connect_all(client, emulator, settings, mailboxes)
                before = await eventually(
                    lambda: settled(admin, cluster, settings), "groups settle at first", 60
                )

                # Traffic, then one instance of every service dies mid-run and another starts.
                await change_traffic(client, emulator, mailboxes, phase=1)
                killed = {service: cluster.live(service)[0] for service in SERVICES}
                for instance in killed.values():
                    cluster.kill(instance)
                traffic = asyncio.create_task(change_traffic(client, emulator, mailboxes, phase=2))
                replacements = await asyncio.gather(*(cluster.start(s) for s in SERVICES))
                await traffic
                for instance in killed.values():
                    await instance.process.wait()

                # Nothing lost, nothing doubled.
                wanted = {m.user_id: expected_read_model(m, phases=2) for m in mailboxes}

                async def converged() -> bool:
                    return await read_models(settings) == wanted

                try:
                    await eventually(converged, "every 1:1 in the read model exactly once", 90)
                except AssertionError:
                    found = await read_models(settings)
                    wrong = {k: (found.get(k), v) for k, v in wanted.items() if found.get(k) != v}
                    raise AssertionError(f"read model differs: {wrong}") from None
                # Every command's outcome reaches the ingress's status (the outcomes topic's
                # group lost a member too).
                command_ids = [f"{m.user_id}-cmd-{phase}" for m in mailboxes for phase in (1, 2)]

                async def states() -> dict[str, str]:
                    found = {}
                    for command_id in command_ids:
                        answer = await client.get(f"/v1/commands/{command_id}")
                        assert answer.status_code == 200, answer.text
                        found[command_id] = answer.json()["state"]
                    return found

                async def all_succeeded() -> bool:
                    return set((await states()).values()) == {"succeeded"}

                try:
                    await eventually(all_succeeded, "every command succeeded", 60)
                except AssertionError:
                    pending = {k: v for k, v in (await states()).items() if v != "succeeded"}
                    raise AssertionError(f"commands not succeeded: {pending}") from None
                for mailbox in mailboxes:
                    events = await as_user(
                        emulator, mailbox, "GET", "/me/events", params={"$top": "100"}
                    )
                    subjects = Counter(e["subject"] for e in events["value"])
                    assert subjects[f"1:1 with {mailbox.member_name}"] == 2
                    assert subjects[f"{mailbox.user_id} outlook 1"] == 1

                # Rebalanced: the killed members left, the new ones joined, every partition
                # is owned by exactly one live instance.
                after = await eventually(
                    lambda: settled(admin, cluster, settings), "groups settle again", 60
                )
                for group, view in after.items():
                    assert set(view.members) != set(before[group].members), group
                    assert set(view.members) & set(before[group].members), (
                        f"{group}: every member changed, not a rebalance"
                    )

                # One worker per mailbox: never more than 4 Graph requests in flight for one.
                records = list(emulator.state.request_log.records)
                assert len(records) < 500_000
                per_mailbox = Counter(r.mailbox for r in records if r.mailbox)
                assert len(per_mailbox) >= len(mailboxes)
                peak = max(r.concurrency for r in records if r.mailbox)
                assert peak <= 4, [
                    (r.mailbox, r.concurrency, r.path) for r in records if r.concurrency > 4
                ][:10]

                # A delta round's pages are fetched one after another by the one worker that
                # holds the mailbox: two delta requests of one mailbox overlapping in time
                # would be two workers (two syncers) on it at once.
                overlaps = overlapping_delta_requests(records)
                assert overlaps == [], overlaps[:5]
                assert sum("delta" in r.path for r in records) >= len(mailboxes)

                # Every live instance reports its lag.
                if lag_metric_exists():
                    for service in SERVICES:
                        for instance in cluster.live(service):
                            assert await eventually(
                                lambda i=instance: lag_reported(i, settings),
                                f"{instance.name} reports {LAG_METRIC}",
                                30,
                            )
                else:
                    print(f"\n{LAG_METRIC} not exported yet: lag check not run")

                total = time.monotonic() - began
                print(
                    f"\nscale-out {os.environ.get('SMVUE_SCALE_OUT', 'small')}: "
                    f"{SHAPE.instances} x {len(mailboxes)} mailboxes; start {started:.1f} s, "
                    f"total {total:.1f} s; Graph requests {len(records)}, "
                    f"peak in flight per mailbox {peak}"
                )
                for instance in cluster.instances:
                    if instance.alive:
                        print(f"  {instance.name:12} RSS {instance.rss_mib():6.1f} MiB")
                assert {r.service for r in replacements} == set(SERVICES)
        finally:
            await admin.close()
