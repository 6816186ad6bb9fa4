"""Dead letters for operators: read them, put them back to the group that failed them, purge.

- Reading: every registry topic's `<topic>.dlq`, from the beginning up to the end offsets
  taken when the read starts (so a read always ends), with the `x-dlq-*` headers decoded.
  A dead letter's id is `<dlq topic>:<partition>:<offset>`.
- Redrive: the record goes back to the consumer group named in its `x-dlq-consumer-group`
  header and only to it. The group's own handler is called in-process — the service's
  wiring (`services.<name>.app.build_service`) builds it, so no rule has a second copy —
  instead of republishing onto the source topic, which other groups also consume (and
  where, on a compacted topic, an old record would become the newest). A marker in MongoDB
  (`dlq_redrives`, keyed by the dead letter's id) makes it idempotent: redriving twice
  applies once. Each redrive is audited; a record that fails again goes back to the
  dead-letter topic with `x-dlq-redrive-count` one higher (and the marker says where).
- Purge: Kafka deletes records by offset (`DeleteRecords`), so purging "older than T"
  drops every partition's records before the first one at or after T.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.structs import TopicPartition
from pydantic import ValidationError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.audit import AuditLog, ServiceName
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.contracts.topics import ALL_TOPICS, TopicSpec
from shared.messaging.admin import topic_partitions
from shared.messaging.consumer import Retryable
from shared.messaging.dead_letter import DeadLetterReason
from shared.messaging.handler_table import GroupHandler, handlers_of
from shared.messaging.publisher import KafkaPublisher
from shared.mongo import Document, create_mongo_client, database
from shared.observability.logging import redact_value
from shared.service import Service
from shared.settings import Settings

SERVICES = ("ingress", "syncer", "writer", "projector")
REDRIVE_COUNT_HEADER = "x-dlq-redrive-count"
REDRIVE_OF_HEADER = "x-dlq-redrive-of"
MARKERS = "dlq_redrives"
STALE_CLAIM = timedelta(minutes=10)


def redact(text: str) -> str:
    """Secrets masked the way the logs mask them (tokens, codes, clientState...)."""
    return str(redact_value(text))


@dataclass(frozen=True)
class DeadLetter:
    id: str
    dlq_topic: str
    partition: int
    offset: int
    timestamp: datetime
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    group: str
    message_type: str | None
    reason: str
    error: str  # redacted
    failed_at: str | None
    redrive_count: int
    key: bytes | None
    value: bytes
    headers: dict[str, str] = field(repr=False)

    def row(self, status: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "group": self.group,
            "type": self.message_type,
            "reason": self.reason,
            "error": self.error,
            "at": self.timestamp,
            "redrive_count": self.redrive_count,
            "status": status or "dead",
        }

    def detail(self, status: str | None = None) -> dict[str, Any]:
        """Everything, with the original headers and value (secrets masked anyway)."""
        value: Any
        try:
            value = json.loads(self.value)
        except ValueError:
            value = self.value.decode("utf-8", "replace")
        return {
            **self.row(status),
            "key": self.key.decode("utf-8", "replace") if self.key else None,
            "headers": {k: redact(v) for k, v in self.headers.items()},
            "value": redact_value(value),
        }


def dead_letter_topics(settings: Settings) -> dict[str, TopicSpec]:
    return {settings.dead_letter_topic(s): s for s in ALL_TOPICS if s.has_dead_letter}


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _message_type(value: bytes, headers: dict[str, str]) -> str | None:
    if "x-message-type" in headers:
        return headers["x-message-type"]
    with contextlib.suppress(ValueError, AttributeError):
        kind = json.loads(value).get("type")
        return str(kind) if kind is not None else None
    return None


def _to_dead_letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers}
    value = record.value or b""
    return DeadLetter(
        id=f"{record.topic}:{record.partition}:{record.offset}",
        dlq_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        source_topic=headers.get("x-dlq-source-topic", record.topic.removesuffix(".dlq")),
        source_partition=_int(headers.get("x-dlq-source-partition")),
        source_offset=_int(headers.get("x-dlq-source-offset")),
        group=headers.get("x-dlq-consumer-group", ""),
        message_type=_message_type(value, headers),
        reason=headers.get("x-dlq-reason", ""),
        error=redact(headers.get("x-dlq-error", "")),
        failed_at=headers.get("x-dlq-failed-at"),
        redrive_count=_int(headers.get(REDRIVE_COUNT_HEADER)) or 0,
        key=record.key,
        value=value,
        headers=headers,
    )


async def read_dead_letters(settings: Settings, *, within: float = 30) -> list[DeadLetter]:
    """Every dead letter now in the dead-letter topics (up to the end offsets at the start)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
    )
    partitions = await topic_partitions(settings, list(dead_letter_topics(settings)))
    if not partitions:
        return []
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        remaining = {tp for tp in partitions if ends[tp] > await consumer.position(tp)}
        while remaining:
            if loop.time() > deadline:
                raise TimeoutError(f"dead-letter topics not read within {within}s")
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batches.items():
                letters.extend(_to_dead_letter(r) for r in records if r.offset < ends[tp])
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        letters.sort(key=lambda d: (d.timestamp, d.id))
        return letters
    finally:
        await consumer.stop()


def select(
    letters: Sequence[DeadLetter],
    *,
    topic: str | None = None,
    group: str | None = None,
    message_type: str | None = None,
    since: datetime | None = None,
    ids: Sequence[str] = (),
) -> list[DeadLetter]:
    """The dead letters matching every filter given (a topic by its registry name or full)."""
    wanted = set(ids)
    out = []
    for letter in letters:
        if (
            topic
            and topic not in (letter.source_topic, letter.dlq_topic)
            and not (letter.source_topic.endswith(topic))
        ):
            continue
        if group and letter.group != group and not letter.group.endswith(group):
            continue
        if message_type and letter.message_type != message_type:
            continue
        if since and letter.timestamp < since:
            continue
        if wanted and letter.id not in wanted:
            continue
        out.append(letter)
    return out


class RedriveOutcome(StrEnum):
    APPLIED = "applied"
    ALREADY_REDRIVEN = "already_redriven"
    FAILED_AGAIN = "failed_again"  # back in the dead-letter topic, count + 1
    RETRY_LATER = "retry_later"  # a transient failure: nothing recorded, run again
    NO_HANDLER = "no_handler"  # no service wires that group
    BUSY = "busy"  # another redrive of the same record is running
    WOULD_REDRIVE = "would_redrive"  # --dry-run


@dataclass(frozen=True)
class RedriveResult:
    id: str
    group: str
    outcome: RedriveOutcome
    detail: str = ""
    new_id: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "new_id": self.new_id,
        }


class RedriveMarkers:
    """`dlq_redrives`: one document per dead letter put back (state running/applied/failed)."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._markers = collection

    async def states(self, ids: Sequence[str]) -> dict[str, Document]:
        return {d["_id"]: d async for d in self._markers.find({"_id": {"$in": list(ids)}})}

    async def claim(self, letter: DeadLetter, now: datetime) -> Document | None:
        """None when this run may redrive it; else the marker that says why not."""
        try:
            await self._markers.insert_one(
                {"_id": letter.id, "state": "running", "group": letter.group, "at": now}
            )
            return None
        except DuplicateKeyError:
            pass
        marker = await self._markers.find_one({"_id": letter.id})
        if marker is None or marker["state"] != "running":
            return marker
        stale = marker["at"].replace(tzinfo=marker["at"].tzinfo or UTC) < now - STALE_CLAIM
        if stale:
            taken = await self._markers.update_one(
                {"_id": letter.id, "state": "running", "at": marker["at"]}, {"$set": {"at": now}}
            )
            if taken.modified_count == 1:
                return None
        return marker

    async def finish(self, letter_id: str, state: str, **fields: Any) -> None:
        await self._markers.update_one(
            {"_id": letter_id}, {"$set": {"state": state, "done_at": datetime.now(UTC), **fields}}
        )

    async def release(self, letter_id: str) -> None:
        await self._markers.delete_one({"_id": letter_id, "state": "running"})


def service_of(group: str, settings: Settings) -> str | None:
    """The service whose wiring subscribes `group` (`<prefix>smvue.<service>.<topic>`)."""
    for service in SERVICES:
        if group.startswith(settings.group_id(service) + "."):
            return service
    return None


def _build(service: str, settings: Settings) -> Service:
    module = importlib.import_module(f"services.{service}.app")
    built: Service = module.build_service(settings)
    return built


class Redriver:
    """Puts dead letters back to their groups' handlers (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def marker_states(self, ids: Sequence[str]) -> dict[str, Document]:
        client = create_mongo_client(self._settings)
        try:
            markers = RedriveMarkers(database(client, self._settings)[MARKERS])
            return await markers.states(ids)
        finally:
            await client.close()

    async def redrive(
        self, letters: Sequence[DeadLetter], *, dry_run: bool = False
    ) -> list[RedriveResult]:
        results: list[RedriveResult] = []
        by_service: dict[str | None, list[DeadLetter]] = {}
        for letter in letters:
            by_service.setdefault(service_of(letter.group, self._settings), []).append(letter)
        for service, items in by_service.items():
            if service is None:
                results.extend(
                    RedriveResult(d.id, d.group, RedriveOutcome.NO_HANDLER, "unknown group")
                    for d in items
                )
                continue
            results.extend(await self._redrive_service(service, items, dry_run))
        order = {d.id: i for i, d in enumerate(letters)}
        return sorted(results, key=lambda r: order[r.id])

    async def _redrive_service(
        self, service: str, letters: Sequence[DeadLetter], dry_run: bool
    ) -> list[RedriveResult]:
        built = _build(service, self._settings)
        assert built.broker is not None
        table = handlers_of(built.broker)
        client = create_mongo_client(self._settings)
        markers = RedriveMarkers(database(client, self._settings)[MARKERS])
        producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=True,
        )
        await built.broker.connect()
        for hook in built.on_start:  # as the service starts (indexes, the read model pointer)
            await hook()
        await producer.start()
        audit = AuditLog(KafkaPublisher(built.broker, self._settings), cast(ServiceName, service))
        try:
            results = []
            for letter in letters:
                entry = table.get(letter.group)
                if entry is None:
                    results.append(
                        RedriveResult(
                            letter.id,
                            letter.group,
                            RedriveOutcome.NO_HANDLER,
                            f"{service} subscribes no such group",
                        )
                    )
                    continue
                results.append(await self._one(letter, entry, markers, producer, audit, dry_run))
            return results
        finally:
            await producer.stop()
            await built.broker.stop()
            for hook in built.on_stop:
                await hook()
            await client.close()

    async def _one(
        self,
        letter: DeadLetter,
        entry: GroupHandler,
        markers: RedriveMarkers,
        producer: AIOKafkaProducer,
        audit: AuditLog,
        dry_run: bool,
    ) -> RedriveResult:
        if dry_run:
            known = (await markers.states([letter.id])).get(letter.id)
            if known is not None:
                return RedriveResult(
                    letter.id, letter.group, RedriveOutcome.ALREADY_REDRIVEN, known["state"]
                )
            return RedriveResult(letter.id, letter.group, RedriveOutcome.WOULD_REDRIVE)
        marker = await markers.claim(letter, datetime.now(UTC))
        if marker is not None:
            outcome = (
                RedriveOutcome.BUSY
                if marker["state"] == "running"
                else RedriveOutcome.ALREADY_REDRIVEN
            )
            return RedriveResult(
                letter.id, letter.group, outcome, marker["state"], marker.get("new_id")
            )
        try:
            envelope = entry.spec.adapter().validate_json(letter.value)
            await entry.apply(envelope)
        except Retryable as exc:
            await markers.release(letter.id)
            return RedriveResult(letter.id, letter.group, RedriveOutcome.RETRY_LATER, str(exc))
        except Exception as exc:  # fails again: back to the dead-letter topic
            reason = (
                DeadLetterReason.INVALID_RECORD
                if isinstance(exc, ValidationError)
                else DeadLetterReason.HANDLER_FAILED
            )
            error = redact(f"{type(exc).__name__}: {exc}")[:1000]
            new_id = await self._dead_letter_again(producer, letter, reason, error)
            await markers.finish(letter.id, "failed", new_id=new_id, error=error)
            await self._audit(audit, letter, AuditOutcome.FAILED, f"failed again → {new_id}")
            return RedriveResult(
                letter.id, letter.group, RedriveOutcome.FAILED_AGAIN, error, new_id
            )
        await markers.finish(letter.id, "applied")
        await self._audit(audit, letter, AuditOutcome.SUCCEEDED, "applied")
        return RedriveResult(letter.id, letter.group, RedriveOutcome.APPLIED)

    async def _dead_letter_again(
        self,
        producer: AIOKafkaProducer,
        letter: DeadLetter,
        reason: DeadLetterReason,
        error: str,
    ) -> str:
        headers = dict(letter.headers)
        headers.update(
            {
                "x-dlq-reason": reason.value,
                "x-dlq-error": error,
                "x-dlq-failed-at": datetime.now(UTC).isoformat(),
                REDRIVE_COUNT_HEADER: str(letter.redrive_count + 1),
                REDRIVE_OF_HEADER: letter.id,
            }
        )
        sent = await producer.send_and_wait(
            letter.dlq_topic,
            letter.value,
            key=letter.key,
            partition=letter.partition,
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
        return f"{sent.topic}:{sent.partition}:{sent.offset}"

    @staticmethod
    async def _audit(
        audit: AuditLog, letter: DeadLetter, outcome: AuditOutcome, detail: str
    ) -> None:
        key = letter.key.decode("utf-8", "replace") if letter.key else None
        await audit.record(
            AuditOperation.DLQ_REDRIVE,
            outcome,
            connection_id=key if letter.source_topic.endswith(_CONNECTION_KEYED) else None,
            target_ids=[letter.id],
            detail=f"redrive to {letter.group} (redrive count {letter.redrive_count}): {detail}",
        )


# Topics whose key is the connection id (the audit record is then findable by connection).
_CONNECTION_KEYED = tuple(s.name for s in ALL_TOPICS if s.key == "connection id")


@dataclass(frozen=True)
class PurgedPartition:
    topic: str
    partition: int
    before_offset: int
    deleted: int


async def purge(
    settings: Settings, older_than: datetime, *, dry_run: bool = False
) -> list[PurgedPartition]:
    """Deletes every dead letter written before `older_than` (per partition, by offset)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    partitions = await topic_partitions(settings, list(dead_letter_topics(settings)))
    if not partitions:
        return []
    await consumer.start()
    try:
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        at = await consumer.offsets_for_times(
            {tp: int(older_than.timestamp() * 1000) for tp in partitions}
        )
    finally:
        await consumer.stop()
    plan = []
    for tp in partitions:
        found = at.get(tp)
        before = found.offset if found is not None else ends[tp]
        if before > starts[tp]:
            plan.append(PurgedPartition(tp.topic, tp.partition, before, before - starts[tp]))
    if plan and not dry_run:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_records(
                {
                    TopicPartition(p.topic, p.partition): RecordsToDelete(p.before_offset)
                    for p in plan
                }
            )
        finally:
            await admin.close()
    return plan
