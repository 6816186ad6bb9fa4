"""The chaos run: every service as its own process (two syncers and two projectors in their
consumer groups), 20+ connected mailboxes on the Graph emulator, a Kafka broker and a
MongoDB server of the run's own, and a scripted, seeded load of Outlook changes and SMVue
commands while faults are injected at seeded random moments:

- `kill`: SIGKILL of any service instance, restarted a moment later;
- `kafka_restart` / `mongo_restart`: the broker / the database server stopped and started;
- `mongo_pause`: the database server SIGSTOPped long enough for clients to time out, then
  SIGCONTed;
- `graph_storm`: Graph answers 429 (with Retry-After) or 503 for a while, or `held` answers
  (the write happens, the answer comes late), on one mailbox or all;
- `notifications`: the emulator duplicates, reorders or drops the next change notifications
  (a drop comes with Graph's `missed` lifecycle notification, as Graph does);
- `poison`: an unparseable record on a consumed topic (the one thing that may be
  dead-lettered).

Then faults stop, the system goes quiet, and the run checks against ground truth read from
the emulator's calendars: the read model holds every 1:1 exactly once at its latest
version and nothing else; Outlook holds exactly one event per scheduled command that is not
cancelled; every command has a final outcome; the dead-letter topics hold the poison
records only; every Graph write the emulator logged from the app has its audit record.

`ChaosConfig.seed` drives the load and the faults: a failing run is replayed with the same
seed (timing still varies: processes and the network are real).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from emulators.msgraph.faults import FaultRule
from services.writer.domain.outlook_event import SMVUE_TAG_ID, TAG_EXPAND
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.contracts.topics import AUDIT, MEETING_COMMANDS, NOTIFICATIONS
from shared.graph.client import IMMUTABLE_IDS
from shared.infra.endpoints import InfraEndpoints
from shared.infra.local import LocalInfra
from shared.messaging.admin import topic_partitions
from shared.messaging.dlq import DeadLetter, read_dead_letters
from shared.settings import Settings
from tests.deploy.test_scale_out import (
    Mailbox,
    Shape,
    api,
    connect_all,
    scaled_out,
)
from tests.fixtures.cluster import Cluster, eventually
from tests.fixtures.emulator import RunningEmulator

FAULTS = (
    "kill",
    "graph_storm",
    "notifications",
    "poison",
    "mongo_pause",
    "mongo_restart",
    "kafka_restart",
)
APP_PATHS = r"^/v1\.0/me/"  # the services call /me/...; the load acts on /users/{id}/...


@dataclass(frozen=True)
class ChaosConfig:
    seed: int
    mailboxes: int = 20
    load_seconds: float = 60.0
    ops_per_second: float = 3.0
    fault_gap_seconds: tuple[float, float] = (1.0, 5.0)
    faults: tuple[str, ...] = FAULTS
    instances: dict[str, int] = field(
        default_factory=lambda: {"ingress": 1, "syncer": 2, "writer": 1, "projector": 2}
    )
    quiet_timeout: float = 240.0


@dataclass
class Tally:
    changes: Counter[str] = field(default_factory=Counter)
    commands: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    injected: list[str] = field(default_factory=list)
    poison: int = 0
    expected_dead_letters: int = 0

    def log(self, at: float, what: str) -> None:
        self.injected.append(f"{at:7.1f}s {what}")


@dataclass
class Report:
    seed: int
    tally: Tally
    seconds: float
    lost: int
    duplicated: int
    extra: int
    stale: int
    events_per_command: dict[str, int]
    commands_without_outcome: list[str]
    outcomes: Counter[str]
    unexpected_dead_letters: list[str]
    unaudited_writes: list[str]
    problems: list[str]
    one_on_ones: int = 0  # in Outlook at the end (= in the read model when nothing is lost)
    writes_checked: int = 0  # Graph writes of the app matched against the audit topic

    def summary(self) -> dict[str, Any]:
        t = self.tally
        return {
            "seed": self.seed,
            "seconds": round(self.seconds),
            "changes": dict(t.changes),
            "commands": dict(t.commands),
            "outcomes": dict(self.outcomes),
            "faults": dict(t.faults),
            "poison": t.poison,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "extra": self.extra,
            "without_outcome": len(self.commands_without_outcome),
            "unexpected_dead_letters": len(self.unexpected_dead_letters),
            "unaudited_writes": len(self.unaudited_writes),
            "one_on_ones": self.one_on_ones,
            "writes_checked": self.writes_checked,
            "injected": t.injected,
            "problems": self.problems,
        }

    def render(self) -> str:
        t = self.tally
        lines = [
            f"chaos seed={self.seed} in {self.seconds:.0f}s: "
            f"changes={sum(t.changes.values())} {dict(t.changes)}",
            f"  commands={sum(t.commands.values())} {dict(t.commands)} outcomes "
            f"{dict(self.outcomes)}",
            f"  faults={sum(t.faults.values())} {dict(t.faults)} poison={t.poison}",
            f"  lost={self.lost} duplicated={self.duplicated} extra={self.extra} "
            f"stale={self.stale} no-outcome={len(self.commands_without_outcome)} "
            f"unexpected-dead-letters={len(self.unexpected_dead_letters)} "
            f"unaudited-writes={len(self.unaudited_writes)}",
            f"  at the end: {self.one_on_ones} 1:1s in Outlook, {self.writes_checked} Graph "
            "writes of the app checked against the audit topic",
            "  injected:",
            *(f"    {line}" for line in t.injected),
        ]
        if self.problems:
            lines += ["  PROBLEMS:", *(f"    {p}" for p in self.problems)]
        return "\n".join(lines)


# --- the run's own infrastructure -----------------------------------------------------------


@contextlib.asynccontextmanager
async def own_infra(home: Path) -> AsyncIterator[LocalInfra]:
    """A Kafka broker and a MongoDB server of this run's own (it restarts and pauses them)."""
    infra = LocalInfra(home / "infra", prefer_default_ports=False)
    await asyncio.to_thread(infra.up)
    try:
        yield infra
    finally:
        mongo_pid = infra.mongo.pid()
        if mongo_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(mongo_pid, signal.SIGCONT)
        await asyncio.to_thread(infra.down)


# --- Outlook as the people using it ---------------------------------------------------------


class Outlook:
    """The load's side of Outlook: the managers changing their calendars (on
    `/users/{id}/...`, so faults aimed at the app's `/me/...` calls don't hit them)."""

    def __init__(self, emulator: RunningEmulator) -> None:
        self._emulator = emulator

    async def call(self, mailbox: Mailbox, method: str, path: str, **kw: Any) -> Any:
        token = self._emulator.state.identity.mint_access_token(
            mailbox.graph_id, "Calendars.ReadWrite"
        )
        async with self._emulator.client() as graph:
            for _ in range(20):
                answer = await graph.request(
                    method,
                    f"/v1.0/users/{mailbox.graph_id}{path}",
                    # The ids the system keeps (ADR 0015), so ground truth compares by id.
                    headers={"Authorization": f"Bearer {token}", "Prefer": IMMUTABLE_IDS},
                    timeout=60,
                    **kw,
                )
                if answer.status_code in (429, 503, 504):
                    await asyncio.sleep(0.5)
                    continue
                assert answer.status_code < 300, f"{method} {path}: {answer.text}"
                return answer.json() if answer.content else None
        raise AssertionError(f"{method} {path}: still throttled")

    async def events(self, mailbox: Mailbox) -> list[dict[str, Any]]:
        """Every event in the calendar, with SMVue's tag when it has one."""
        found: list[dict[str, Any]] = []
        page = await self.call(
            mailbox, "GET", "/events", params={"$top": "100", "$expand": TAG_EXPAND}
        )
        while True:
            found += page["value"]
            link = page.get("@odata.nextLink")
            if not link:
                return found
            path = link.split(f"/users/{mailbox.graph_id}", 1)[1]
            page = await self.call(mailbox, "GET", path)


def smvue_command_of(event: dict[str, Any]) -> str | None:
    for prop in event.get("singleValueExtendedProperties") or []:
        if str(prop.get("id", "")).lower() == SMVUE_TAG_ID.lower():
            return str(prop.get("value"))
    return None


def _slot(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


# --- the load -------------------------------------------------------------------------------


@dataclass
class Load:
    """Seeded Outlook changes and SMVue commands, over every mailbox."""

    rng: random.Random
    outlook: Outlook
    client: httpx.AsyncClient
    mailboxes: list[Mailbox]
    tally: Tally
    base: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    )
    outlook_events: dict[str, list[str]] = field(default_factory=dict)  # user → event ids
    commands: dict[str, str] = field(default_factory=dict)  # command id → kind
    targets: dict[str, str] = field(default_factory=dict)  # cancel/reschedule id → meeting
    schedules: dict[str, list[str]] = field(default_factory=dict)  # user → command ids
    slots_used: set[tuple[str, datetime]] = field(default_factory=set)
    counter: int = 0

    def _start(self, mailbox: Mailbox) -> datetime:
        """A free half-hour slot of the mailbox in the next 4 weeks (1,344 of them: a
        30-minute run at 7 operations/s over 30 mailboxes takes ~210 per mailbox). Raises
        when none is left, rather than spinning the event loop (and the emulator) forever."""
        for _ in range(20_000):
            moment = self.base + timedelta(
                days=self.rng.randint(1, 28), hours=self.rng.randint(7, 18)
            )
            moment += timedelta(minutes=15 * self.rng.randint(0, 3))
            if (mailbox.user_id, moment) not in self.slots_used:
                self.slots_used.add((mailbox.user_id, moment))
                return moment
        raise RuntimeError(f"no free slot left in {mailbox.user_id}'s calendar")

    async def step(self) -> None:
        mailbox = self.rng.choice(self.mailboxes)
        ops: list[tuple[int, Callable[[Mailbox], Awaitable[None]]]] = [
            (5, self.outlook_create),
            (3, self.outlook_update),
            (1, self.outlook_delete),
            (1, self.outlook_group),
            (1, self.outlook_ungroup),
            (3, self.schedule),
            (1, self.reschedule),
            (1, self.cancel),
        ]
        op = self.rng.choices([o for _, o in ops], weights=[w for w, _ in ops])[0]
        await op(mailbox)

    def _name(self) -> str:
        self.counter += 1
        return f"c{self.counter}"

    async def outlook_create(self, mailbox: Mailbox) -> None:
        start = self._start(mailbox)
        body = {
            "subject": f"{mailbox.user_id} {self._name()}",
            "start": _slot(start),
            "end": _slot(start + timedelta(minutes=30)),
            "attendees": [{"emailAddress": {"address": mailbox.member_mail}, "type": "required"}],
        }
        created = await self.outlook.call(mailbox, "POST", "/events", json=body)
        self.outlook_events.setdefault(mailbox.user_id, []).append(str(created["id"]))
        self.tally.changes["create"] += 1

    def _pick(self, mailbox: Mailbox) -> str | None:
        ids = self.outlook_events.get(mailbox.user_id) or []
        return self.rng.choice(ids) if ids else None

    async def outlook_update(self, mailbox: Mailbox) -> None:
        event_id = self._pick(mailbox)
        if event_id is None:
            return await self.outlook_create(mailbox)
        change: dict[str, Any] = {"subject": f"{mailbox.user_id} {self._name()} edited"}
        if self.rng.random() < 0.5:
            start = self._start(mailbox)
            change |= {"start": _slot(start), "end": _slot(start + timedelta(minutes=45))}
        await self.outlook.call(mailbox, "PATCH", f"/events/{event_id}", json=change)
        self.tally.changes["update"] += 1
        return None

    async def outlook_delete(self, mailbox: Mailbox) -> None:
        event_id = self._pick(mailbox)
        if event_id is None:
            return None
        self.outlook_events[mailbox.user_id].remove(event_id)
        await self.outlook.call(mailbox, "DELETE", f"/events/{event_id}")
        self.tally.changes["delete"] += 1
        return None

    async def outlook_group(self, mailbox: Mailbox) -> None:
        """A 1:1 gains a third person: it stops being a 1:1."""
        event_id = self._pick(mailbox)
        if event_id is None:
            return None
        attendees = [
            {"emailAddress": {"address": a}, "type": "required"}
            for a in (mailbox.member_mail, "someone@fabrikam.test")
        ]
        await self.outlook.call(
            mailbox, "PATCH", f"/events/{event_id}", json={"attendees": attendees}
        )
        self.tally.changes["to_group"] += 1
        return None

    async def outlook_ungroup(self, mailbox: Mailbox) -> None:
        """Back to the manager and the member alone (a 1:1 again, if it was a group)."""
        event_id = self._pick(mailbox)
        if event_id is None:
            return None
        attendees = [{"emailAddress": {"address": mailbox.member_mail}, "type": "required"}]
        await self.outlook.call(
            mailbox, "PATCH", f"/events/{event_id}", json={"attendees": attendees}
        )
        self.tally.changes["to_one_on_one"] += 1
        return None

    async def _command(self, kind: str, body: dict[str, Any]) -> bool:
        for _ in range(30):
            try:
                answer = await self.client.post(f"/v1/commands/{kind}", json=body)
            except httpx.TransportError:
                await asyncio.sleep(1)
                continue
            if answer.status_code == 202:
                self.commands[body["command_id"]] = kind
                self.tally.commands[kind] += 1
                return True
            if answer.status_code in (502, 503, 504):
                await asyncio.sleep(1)  # the ingress can't reach Kafka or MongoDB right now
                continue
            raise AssertionError(f"{kind}: {answer.status_code} {answer.text}")
        self.tally.commands[f"{kind}_not_accepted"] += 1
        return False

    async def schedule(self, mailbox: Mailbox) -> None:
        command_id = f"{mailbox.user_id}-{self._name()}-{uuid.uuid4().hex[:6]}"
        start = self._start(mailbox)
        body = {
            "command_id": command_id,
            "manager_id": mailbox.user_id,
            "member_name": mailbox.member_name,
            "member_email": mailbox.member_mail,
            "start": start.replace(tzinfo=None).isoformat(),
            "time_zone": "UTC",
            "meeting_type": "30min",
            "add_teams_link": False,
            "prep_url": "https://app.smvue.test/prep/1",
        }
        if await self._command("schedule", body):
            self.schedules.setdefault(mailbox.user_id, []).append(command_id)

    async def _scheduled_meeting(self, mailbox: Mailbox) -> str | None:
        """The meeting id of one of the mailbox's scheduled commands that succeeded."""
        candidates = list(self.schedules.get(mailbox.user_id) or [])
        self.rng.shuffle(candidates)
        for command_id in candidates[:3]:
            with contextlib.suppress(httpx.HTTPError):
                answer = await self.client.get(f"/v1/commands/{command_id}")
                status = answer.json() if answer.status_code == 200 else {}
                if status.get("state") == "succeeded" and status.get("result"):
                    return str(status["result"]["meeting_id"])
        return None

    async def reschedule(self, mailbox: Mailbox) -> None:
        meeting_id = await self._scheduled_meeting(mailbox)
        if meeting_id is None:
            return await self.schedule(mailbox)
        start = self._start(mailbox)
        command_id = f"{mailbox.user_id}-{self._name()}-{uuid.uuid4().hex[:6]}"
        self.targets[command_id] = meeting_id
        await self._command(
            "reschedule",
            {
                "command_id": command_id,
                "manager_id": mailbox.user_id,
                "meeting_id": meeting_id,
                "new_start": start.replace(tzinfo=None).isoformat(),
                "time_zone": "UTC",
            },
        )
        return None

    async def cancel(self, mailbox: Mailbox) -> None:
        meeting_id = await self._scheduled_meeting(mailbox)
        if meeting_id is None:
            return None
        command_id = f"{mailbox.user_id}-{self._name()}-{uuid.uuid4().hex[:6]}"
        self.targets[command_id] = meeting_id
        await self._command(
            "cancel",
            {
                "command_id": command_id,
                "manager_id": mailbox.user_id,
                "meeting_id": meeting_id,
            },
        )
        return None


# --- the faults -----------------------------------------------------------------------------


@dataclass
class Faults:
    rng: random.Random
    cluster: Cluster
    emulator: RunningEmulator
    infra: LocalInfra
    settings: Settings
    mailboxes: list[Mailbox]
    tally: Tally
    began: float
    rules: list[FaultRule] = field(default_factory=list)

    def _log(self, what: str) -> None:
        self.tally.log(time.monotonic() - self.began, what)  # since the run began

    async def inject(self, kind: str) -> None:
        self.tally.faults[kind] += 1
        await getattr(self, kind)()

    async def kill(self) -> None:
        service = self.rng.choice(sorted(self.cluster.started))
        live = self.cluster.live(service)
        if not live:
            return
        victim = self.rng.choice(live)
        self.cluster.kill(victim)
        await victim.process.wait()
        pause = self.rng.uniform(0.0, 3.0)
        self._log(f"SIGKILL {victim.name}, restart after {pause:.1f}s")
        await asyncio.sleep(pause)
        await self.cluster.start(service)

    async def graph_storm(self) -> None:
        mailbox = self.rng.choice([None, *self.mailboxes])
        who = mailbox.graph_id if mailbox else None
        style = self.rng.choice(["429", "503", "held", "slow"])
        count = self.rng.randint(3, 25)
        if style == "429":
            rule = FaultRule(APP_PATHS, status=429, retry_after=1, count=count, mailbox=who)
        elif style == "503":
            rule = FaultRule(APP_PATHS, status=503, count=count, mailbox=who)
        elif style == "held":
            # The write happens, the answer comes late: the app may time out and retry.
            delay = self.rng.choice([2_000, 8_000, 35_000])
            rule = FaultRule(
                APP_PATHS + "events",
                method="POST",
                status=None,
                answer_delay_ms=delay,
                count=self.rng.randint(1, 3),
                mailbox=who,
            )
        else:
            rule = FaultRule(APP_PATHS, status=None, latency_ms=1500, count=count, mailbox=who)
        self.emulator.state.faults.add(rule)
        self.rules.append(rule)
        self._log(
            f"Graph {style} x{rule.count} on {mailbox.user_id if mailbox else 'every mailbox'}"
        )

    async def notifications(self) -> None:
        controls = self.emulator.state.subscriptions.dispatcher.controls
        style = self.rng.choice(["duplicate", "reorder", "drop"])
        n = self.rng.randint(1, 6)
        setattr(controls, f"{style}_next", getattr(controls, f"{style}_next") + n)
        self._log(f"notifications: {style} next {n}")

    async def poison(self) -> None:
        spec = self.rng.choice([NOTIFICATIONS, MEETING_COMMANDS])
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            self.tally.poison += 1
            key = f"chaos-poison-{self.tally.poison}"
            await producer.send_and_wait(self.settings.topic(spec), b"{not json", key=key.encode())
        finally:
            await producer.stop()
        self.tally.expected_dead_letters += 1  # one consumer group per topic
        self._log(f"poison record {key} on {spec.name}")

    async def mongo_pause(self) -> None:
        pid = self.infra.mongo.pid()
        if pid is None:
            return
        seconds = self.rng.uniform(6.0, 14.0)
        self._log(f"MongoDB SIGSTOP for {seconds:.1f}s")
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    async def mongo_restart(self) -> None:
        self._log("MongoDB restart")
        await asyncio.to_thread(self.infra.mongo.stop)
        await asyncio.sleep(self.rng.uniform(0.5, 3.0))
        await asyncio.to_thread(self.infra.mongo.start)

    async def kafka_restart(self) -> None:
        self._log("Kafka broker restart")
        await asyncio.to_thread(self.infra.kafka.stop)
        await asyncio.sleep(self.rng.uniform(0.5, 3.0))
        await asyncio.to_thread(self.infra.kafka.start)

    def stop(self) -> None:
        """Faults off: no rule left, deliveries as normal."""
        self.emulator.state.faults.clear()
        controls = self.emulator.state.subscriptions.dispatcher.controls
        controls.duplicate_next = controls.reorder_next = controls.drop_next = 0


# --- the checks -----------------------------------------------------------------------------


Row = tuple[str, str, datetime]  # Graph event id, subject, start


async def ground_truth(
    outlook: Outlook, mailboxes: list[Mailbox]
) -> tuple[dict[str, list[Row]], dict[str, list[dict[str, Any]]]]:
    """Per manager: the 1:1s Outlook holds, and every event."""
    truth: dict[str, list[Row]] = {}
    events: dict[str, list[dict[str, Any]]] = {}
    for mailbox in mailboxes:
        found = await outlook.events(mailbox)
        events[mailbox.user_id] = found
        rows = []
        for event in found:
            others = {
                a["emailAddress"]["address"].lower()
                for a in event.get("attendees") or []
                if a["emailAddress"]["address"].lower() != mailbox.mail.lower()
            }
            if others == {mailbox.member_mail.lower()} and not event.get("isCancelled"):
                start = datetime.fromisoformat(event["start"]["dateTime"][:19]).replace(tzinfo=UTC)
                rows.append((str(event["id"]), str(event["subject"]), start))
        truth[mailbox.user_id] = sorted(rows)
    return truth, events


async def read_model(settings: Settings) -> dict[str, list[Row]]:
    """Per manager: the live documents of the read model (cancelled ones are not live in
    Outlook's sense either: compared apart, they must not appear)."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    try:
        found: dict[str, list[Row]] = {}
        collection = mongo[settings.mongodb_database]["one_on_ones"]
        async for doc in collection.find({"removed": False, "is_cancelled": {"$ne": True}}):
            found.setdefault(str(doc["manager_id"]), []).append(
                (str(doc["graph_event_id"]), str(doc["subject"]), doc["start"].astimezone(UTC))
            )
        return {k: sorted(v) for k, v in found.items()}
    finally:
        await mongo.close()


def compare(
    truth: dict[str, list[Row]], found: dict[str, list[Row]]
) -> tuple[int, int, int, int, list[str]]:
    """lost, duplicated, extra (not in Outlook at all), stale (in Outlook, but an older
    subject or start), details."""
    lost = duplicated = extra = stale = 0
    details = []
    for manager in sorted(set(truth) | set(found)):
        want = {row[0]: row for row in truth.get(manager, [])}
        have = Counter(row[0] for row in found.get(manager, []))
        rows = {row[0]: row for row in found.get(manager, [])}
        for event_id, row in want.items():
            if have[event_id] == 0:
                lost += 1
                details.append(f"{manager}: missing {row}")
            elif have[event_id] > 1:
                duplicated += have[event_id] - 1
                details.append(f"{manager}: {have[event_id]} documents for {row}")
            elif rows[event_id] != row:
                stale += 1
                details.append(f"{manager}: stale {rows[event_id]}, Outlook has {row}")
        for event_id, n in have.items():
            if event_id not in want:
                extra += n
                details.append(f"{manager}: not a 1:1 in Outlook {rows[event_id]}")
    return lost, duplicated, extra, stale, details


async def audit_entries(settings: Settings) -> list[dict[str, Any]]:
    import json

    topic = settings.topic(AUDIT)
    partitions = await topic_partitions(settings, [topic])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        entries: list[dict[str, Any]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                entries += [json.loads(r.value)["payload"] for r in records if r.value]
        return entries
    finally:
        await consumer.stop()


def sort_dead_letters(letters: list[DeadLetter]) -> tuple[list[str], int]:
    """The dead letters that aren't the harness's poison records, and how many distinct
    poison records were dead-lettered: a poison record redelivered after a kill before its
    commit is dead-lettered again (at-least-once), which is still one poison record."""
    unexpected = [
        f"{d.source_topic}: {d.reason} {d.error[:200]}"
        for d in letters
        if not (d.key or b"").startswith(b"chaos-poison-")
    ]
    poisoned = {
        (d.source_topic, d.key) for d in letters if (d.key or b"").startswith(b"chaos-poison-")
    }
    return unexpected, len(poisoned)


def unaudited(
    records: list[Any], entries: list[dict[str, Any]], client_id: str, tagged: set[str]
) -> tuple[list[str], int]:
    """Graph writes of the app (2xx) without an audit record naming their target, and how
    many writes were checked."""
    done = [e for e in entries if e["outcome"] == AuditOutcome.SUCCEEDED.value]
    targets: dict[str, set[str]] = {}
    for entry in done:
        targets.setdefault(entry["operation"], set()).update(entry.get("target_ids") or [])
    missing = []
    checked = len(tagged)
    for r in records:
        if r.client_id != client_id or not (200 <= r.status < 300):
            continue
        path = r.path.split("/v1.0", 1)[-1]
        parts = path.strip("/").split("/")
        if r.method == "PATCH" and parts[:2] == ["me", "events"]:
            wanted = (AuditOperation.EVENT_UPDATE, parts[2])
        elif r.method == "POST" and parts[:2] == ["me", "events"] and parts[-1] == "cancel":
            wanted = (AuditOperation.EVENT_CANCEL, parts[2])
        elif r.method == "DELETE" and parts[0] == "subscriptions":
            wanted = (AuditOperation.SUBSCRIPTION_DELETE, parts[1])
        elif r.method == "PATCH" and parts[0] == "subscriptions":
            wanted = (AuditOperation.SUBSCRIPTION_RENEW, parts[1])
        else:
            continue
        checked += 1
        if wanted[1] not in targets.get(wanted[0].value, set()):
            missing.append(f"{r.method} {path}")
    # Creates: the response (the new id) isn't logged; every event SMVue made must be named.
    created = targets.get(AuditOperation.EVENT_CREATE.value, set())
    missing += [f"create of {event_id}" for event_id in sorted(tagged - created)]
    return missing, checked


# --- the run --------------------------------------------------------------------------------


async def run_chaos(config: ChaosConfig, scratch: Path) -> Report:
    began = time.monotonic()
    rng = random.Random(config.seed)
    tally = Tally()
    async with own_infra(scratch) as infra:
        tally.log(time.monotonic() - began, "own Kafka + MongoDB up")
        endpoints = InfraEndpoints(infra.kafka.bootstrap, infra.mongo.uri)
        shape = Shape(config.instances, mailboxes=config.mailboxes)
        async with scaled_out(endpoints, scratch, shape) as (cluster, emulator, mailboxes):
            delivery = emulator.state.subscriptions.settings
            delivery.retry_max_attempts = 12  # Graph retries for hours; ride out restarts
            settings = cluster.settings
            outlook = Outlook(emulator)
            tally.log(time.monotonic() - began, "services up")
            async with api(settings) as client:
                client.timeout = httpx.Timeout(60.0)
                await connect_all(client, emulator, settings, mailboxes)
                tally.log(time.monotonic() - began, f"{len(mailboxes)} mailboxes connected")

                async def subscribed() -> bool:
                    return len(emulator.state.subscriptions.subscriptions) >= len(mailboxes)

                await eventually(subscribed, "every mailbox subscribed", 90)
                load = Load(rng, outlook, client, mailboxes, tally)
                faults = Faults(
                    random.Random(config.seed + 1),
                    cluster,
                    emulator,
                    infra,
                    settings,
                    mailboxes,
                    tally,
                    began,
                )
                tally.log(time.monotonic() - began, "load and faults begin")
                await chaos_phase(config, load, faults)
                faults.stop()
                tally.log(time.monotonic() - began, "faults off; waiting for quiet")
                report = await quiet_checks(
                    config, cluster, emulator, outlook, load, client, mailboxes, tally
                )
                tally.log(time.monotonic() - began, "checked")
    report.seconds = time.monotonic() - began
    return report


async def chaos_phase(config: ChaosConfig, load: Load, faults: Faults) -> None:
    """The load and the faults, side by side, for `load_seconds`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + config.load_seconds
    frng = faults.rng

    async def drive_load() -> None:
        gate = asyncio.Semaphore(4)
        pending: set[asyncio.Task[None]] = set()

        async def one() -> None:
            async with gate:
                await load.step()

        while loop.time() < end:
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(load.rng.expovariate(config.ops_per_second))
        if pending:
            await asyncio.gather(*pending)

    async def drive_faults() -> None:
        """Every kind in a seeded order, then again in another: a short run still meets
        each kind once (when it lasts long enough)."""
        order: list[str] = []
        while config.faults:
            await asyncio.sleep(frng.uniform(*config.fault_gap_seconds))
            if loop.time() >= end:
                return
            if not order:
                order = list(config.faults)
                frng.shuffle(order)
            await faults.inject(order.pop(0))

    await asyncio.gather(drive_load(), drive_faults())


async def quiet_checks(
    config: ChaosConfig,
    cluster: Cluster,
    emulator: RunningEmulator,
    outlook: Outlook,
    load: Load,
    client: httpx.AsyncClient,
    mailboxes: list[Mailbox],
    tally: Tally,
) -> Report:
    settings = cluster.settings
    problems: list[str] = []
    for service, count in config.instances.items():  # every instance back and ready
        while len(cluster.live(service)) < count:
            await cluster.start(service)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.quiet_timeout

    # Every command has its final outcome.
    codes: dict[str, str] = {}
    statuses: dict[str, dict[str, Any]] = {}

    async def states() -> dict[str, str]:
        found = {}
        for command_id in load.commands:
            answer = await client.get(f"/v1/commands/{command_id}")
            status = answer.json() if answer.status_code == 200 else {}
            statuses[command_id] = status
            found[command_id] = str(status.get("state", "?"))
            if status.get("failure"):
                codes[command_id] = str(status["failure"].get("code"))
        return found

    final = await states()
    while loop.time() < deadline and set(final.values()) - {"succeeded", "failed"}:
        await asyncio.sleep(1)
        final = await states()
    without = sorted(k for k, v in final.items() if v not in ("succeeded", "failed"))
    outcomes = Counter(
        f"{load.commands[k]}:{v}" + (f"({codes[k]})" if k in codes else "")
        for k, v in final.items()
    )

    # The read model equals what Outlook holds (waiting for the last changes to flow).
    truth, events = await ground_truth(outlook, mailboxes)
    found = await read_model(settings)
    while loop.time() < deadline and compare(truth, found)[:4] != (0, 0, 0, 0):
        await asyncio.sleep(1)
        truth, events = await ground_truth(outlook, mailboxes)
        found = await read_model(settings)
    lost, duplicated, extra, stale, details = compare(truth, found)
    problems += details[:20]

    # Exactly one Outlook event per scheduled command (none once cancelled).
    per_command: Counter[str] = Counter()
    tagged: set[str] = set()
    for mailbox in mailboxes:
        for event in events[mailbox.user_id]:
            command_id = smvue_command_of(event)
            if command_id is not None:
                per_command[command_id] += 1
                tagged.add(str(event["id"]))
    cancelled = cancelled_schedules(load, statuses)  # schedules a cancel succeeded on
    for command_id, kind in load.commands.items():
        if kind != "schedule":
            continue
        want = 0 if final.get(command_id) != "succeeded" or command_id in cancelled else 1
        if per_command[command_id] != want:
            problems.append(
                f"{command_id}: {per_command[command_id]} events, want {want}"
                + aimed_at(command_id, load, statuses)
            )
            duplicated += max(0, per_command[command_id] - want)
            lost += max(0, want - per_command[command_id])

    # Dead letters: the poison records, nothing else.
    letters = await read_dead_letters(settings)
    unexpected, poisoned = sort_dead_letters(letters)
    if poisoned != tally.expected_dead_letters:
        problems.append(f"{poisoned} poison dead letters, want {tally.expected_dead_letters}")

    # Audit: every Graph write the app made has its record.
    entries = await audit_entries(settings)
    records = list(emulator.state.request_log.records)
    missing, checked = unaudited(records, entries, str(settings.client_id), tagged)
    return Report(
        seed=config.seed,
        tally=tally,
        seconds=0.0,
        lost=lost,
        duplicated=duplicated,
        extra=extra,
        stale=stale,
        events_per_command=dict(per_command),
        commands_without_outcome=without,
        outcomes=outcomes,
        unexpected_dead_letters=unexpected,
        unaudited_writes=missing,
        problems=problems,
        one_on_ones=sum(len(rows) for rows in truth.values()),
        writes_checked=checked,
    )


def aimed_at(schedule_id: str, load: Load, statuses: dict[str, dict[str, Any]]) -> str:
    """What the commands aimed at a schedule's meeting ended as (to explain a miscount)."""
    result = statuses.get(schedule_id, {}).get("result") or {}
    meeting = result.get("meeting_id")
    if meeting is None:
        return ""
    said = []
    for command_id, aimed in load.targets.items():
        kind, status = load.commands.get(command_id, "?"), statuses.get(command_id, {})
        if aimed == meeting:
            failure = status.get("failure") or {}
            why = f" {failure.get('code')}: {failure.get('detail')}" if failure else ""
            said.append(f"{kind} {command_id} {status.get('state')}{why}")
    return "; aimed at it: " + (", ".join(said) or "nothing")


def cancelled_schedules(load: Load, statuses: dict[str, dict[str, Any]]) -> set[str]:
    """Schedule commands whose meeting a successful cancel removed."""
    by_meeting: dict[str, str] = {}
    cancelled_meetings: set[str] = set()
    for command_id, kind in load.commands.items():
        status = statuses.get(command_id, {})
        if status.get("state") != "succeeded" or not status.get("result"):
            continue
        meeting = str(status["result"].get("meeting_id"))
        if kind == "schedule":
            by_meeting[meeting] = command_id
        elif kind == "cancel":
            cancelled_meetings.add(meeting)
    return {by_meeting[m] for m in cancelled_meetings if m in by_meeting}
