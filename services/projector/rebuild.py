"""Rebuilding the read model from the topics, with no downtime (ADR 0011).

The projector's own wiring (`build_service`) is built against another database; its
handler table (the groups it subscribes, with their handlers) drives the replay, so the
merge rules have no second copy. The built service's broker is never connected: the
replay cannot publish (no dead letter, no audit record), and the projector calls no Graph.

- `catch_up` reads every partition of the projector's topics from the rebuild's own
  consumer group (`<live group>.rebuild.<name>`; from the beginning the first time, from
  its commits when resumed) up to the end offsets taken when it starts, committing as it
  goes. A record that can never be applied (it doesn't parse, the handler fails for good)
  is skipped and listed — the live projector dead-lettered it too; a transient failure is
  retried.
- `compare` checks the rebuilt collections against the live ones: counts, a content
  checksum per collection, and the ids that differ (and in which fields).
- `switch` moves the pointer (`adapters/pointer.py`), waits until every live projector
  instance reads and writes the new database, then the caller catches up once more: every
  record an instance applied to the old database before it switched is below the end
  offsets taken after that, so the new database misses none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from pydantic import ValidationError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.projector.adapters.pointer import CONTROL, Pointer, ReadModelControl
from services.projector.adapters.read_model import CONNECTIONS, ONE_ON_ONES
from shared.messaging.admin import topic_partitions
from shared.messaging.failures import backoff, is_transient
from shared.messaging.handler_table import GroupHandler, handlers_of
from shared.messaging.offsets import committed, describe
from shared.mongo import Document
from shared.observability.logging import redact_text
from shared.settings import Settings

READ_MODEL_COLLECTIONS = (ONE_ON_ONES, CONNECTIONS)
# Fields written from the moment of the write rather than from the records (none today:
# cadence is computed at query time); a rebuild made later would differ there.
NOT_COMPARED: Mapping[str, frozenset[str]] = {}
_POLL_MS = 500
_MAX_RECORDS = 1000


class RebuildRefused(Exception):
    """The target can't be rebuilt into (it is live, the home database, or not empty)."""


@dataclass(frozen=True)
class Source:
    """One topic the projector consumes, and the groups reading it."""

    entry: GroupHandler
    topic: str
    group: str  # the rebuild's own consumer group

    @property
    def live_group(self) -> str:
        return self.entry.group


@dataclass
class PartitionProgress:
    topic: str
    partition: int
    start: int  # where this run started reading
    end: int  # the end offset it catches up to
    position: int
    records: int = 0
    stalled: bool = False  # no progress for a while below `end`: left as it is

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Skipped:
    topic: str
    partition: int
    offset: int
    type: str | None
    reason: str  # invalid_record | handler_failed
    error: str  # redacted

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CatchUp:
    partitions: list[PartitionProgress] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def merge(self, other: CatchUp) -> None:
        by_key = {(p.topic, p.partition): p for p in self.partitions}
        for part in other.partitions:
            mine = by_key.get((part.topic, part.partition))
            if mine is None:
                self.partitions.append(part)
                continue
            mine.end, mine.position, mine.stalled = part.end, part.position, part.stalled
            mine.records += part.records
        self.skipped.extend(other.skipped)
        self.seconds += other.seconds


ProgressHook = Callable[[PartitionProgress], None]


# ---------------------------------------------------------------------------- the replay
def rebuild_group(live_group: str, name: str) -> str:
    return f"{live_group}.rebuild.{name}"


@contextlib.asynccontextmanager
async def projector_into(settings: Settings, name: str) -> AsyncIterator[list[Source]]:
    """The projector's wiring built against database `name` (its indexes created); its
    broker never connects."""
    from services.projector.app import build_service

    service = build_service(settings.model_copy(update={"mongodb_database": name}))
    assert service.broker is not None
    try:
        for hook in service.on_start:
            await hook()
        yield [
            Source(entry=entry, topic=settings.topic(entry.spec), group=rebuild_group(group, name))
            for group, entry in sorted(handlers_of(service.broker).items())
        ]
    finally:
        for hook in service.on_stop:
            await hook()


async def catch_up(
    settings: Settings,
    sources: Sequence[Source],
    on_progress: ProgressHook | None = None,
    *,
    stall_seconds: float = 10.0,
) -> CatchUp:
    """Every source's partitions up to their end offsets as of now (concurrently)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(
        *(_replay(settings, source, on_progress, stall_seconds) for source in sources)
    )
    out = CatchUp()
    for result in results:
        out.partitions.extend(result.partitions)
        out.skipped.extend(result.skipped)
    out.seconds = loop.time() - started
    return out


async def _replay(
    settings: Settings, source: Source, on_progress: ProgressHook | None, stall_seconds: float
) -> CatchUp:
    out = CatchUp()
    partitions = await topic_partitions(settings, [source.topic])
    if not partitions:
        return out
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=source.group,
        client_id="smvue-read-model-rebuild",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(partitions)  # assigned, never subscribed: no group membership
        begins = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        progress: dict[TopicPartition, PartitionProgress] = {}
        for tp in partitions:
            done = await consumer.committed(tp)
            start = begins[tp] if done is None else max(done, begins[tp])
            consumer.seek(tp, start)
            progress[tp] = PartitionProgress(tp.topic, tp.partition, start, ends[tp], start)
            if on_progress is not None:
                on_progress(progress[tp])
        out.partitions = list(progress.values())
        loop = asyncio.get_running_loop()
        moved_at = dict.fromkeys(partitions, loop.time())
        remaining = [tp for tp in partitions if progress[tp].position < ends[tp]]
        while remaining:
            batches = await consumer.getmany(
                *remaining, timeout_ms=_POLL_MS, max_records=_MAX_RECORDS
            )
            skipped = await asyncio.gather(
                *(_apply(source, records) for records in batches.values() if records)
            )
            for found in skipped:
                out.skipped.extend(found)
            commits = {
                tp: OffsetAndMetadata(records[-1].offset + 1, "")
                for tp, records in batches.items()
                if records
            }
            if commits:
                await consumer.commit(commits)
            now = loop.time()
            for tp in list(remaining):
                part = progress[tp]
                part.records += len(batches.get(tp, ()))
                position = await consumer.position(tp)
                if position > part.position:
                    moved_at[tp] = now
                part.position = position
                if on_progress is not None:
                    on_progress(part)
                if position >= ends[tp]:
                    remaining.remove(tp)
                elif now - moved_at[tp] > stall_seconds:
                    part.stalled = True
                    remaining.remove(tp)
        return out
    finally:
        await consumer.stop()


async def _apply(source: Source, records: list[ConsumerRecord[Any, Any]]) -> list[Skipped]:
    """One partition's records in offset order, through the projector's own handler."""
    entry = source.entry
    adapter = entry.spec.adapter()
    skipped: list[Skipped] = []
    parsed: list[tuple[ConsumerRecord[Any, Any], Any]] = []
    for record in records:
        if record.value is None:
            continue  # a Kafka tombstone: nothing to apply
        try:
            parsed.append((record, adapter.validate_json(record.value)))
        except ValidationError as exc:
            skipped.append(_skipped(record, None, "invalid_record", exc))
    if entry.batch and parsed and await _attempt(entry, [env for _, env in parsed]) is None:
        return skipped
    for record, envelope in parsed:  # one at a time (or finding the poison of a batch)
        failure = await _attempt(entry, [envelope] if entry.batch else envelope)
        if failure is not None:
            skipped.append(_skipped(record, envelope, "handler_failed", failure))
    return skipped


async def _attempt(entry: GroupHandler, argument: Any) -> BaseException | None:
    """Until the handler succeeds (None) or fails for good (the error)."""
    attempt = 0
    while True:
        try:
            await entry.handler(argument)
            return None
        except Exception as exc:
            if not is_transient(exc):
                return exc
            attempt += 1
            await asyncio.sleep(backoff(attempt, exc))


def _skipped(
    record: ConsumerRecord[Any, Any], envelope: Any, reason: str, exc: BaseException
) -> Skipped:
    return Skipped(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        type=getattr(envelope, "type", None),
        reason=reason,
        error=redact_text(f"{type(exc).__name__}: {exc}")[:300],
    )


async def wait_for_live_group(
    settings: Settings, sources: Sequence[Source], reached: CatchUp, wait_seconds: float = 10.0
) -> bool:
    """Until the live projector's groups committed at least as far as the rebuild read
    (so both models saw the same records); True at once when no projector is running."""
    target = {(p.topic, p.partition): p.position for p in reached.partitions}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        behind = False
        for source in sources:
            if not (await describe(settings, source.live_group)).members:
                continue
            done = await committed(settings, source.live_group)
            for tp, offset in ((tp, o) for tp, o in done.items() if tp.topic == source.topic):
                if offset < target.get((tp.topic, tp.partition), 0):
                    behind = True
        if not behind:
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.2)


# ---------------------------------------------------------------------------- verifying
@dataclass
class CollectionDiff:
    collection: str
    live_count: int
    rebuilt_count: int
    live_checksum: str
    rebuilt_checksum: str
    only_live: list[str] = field(default_factory=list)
    only_rebuilt: list[str] = field(default_factory=list)
    different: list[dict[str, Any]] = field(default_factory=list)  # id + differing fields
    not_compared: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.live_checksum == self.rebuilt_checksum

    def row(self) -> dict[str, Any]:
        return {**self.__dict__, "equal": self.equal}


def _comparable(collection: str, doc: Document) -> Document:
    skip = NOT_COMPARED.get(collection, frozenset())
    return {k: v for k, v in doc.items() if k not in skip}


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def digest(collection: str, doc: Document) -> str:
    text = json.dumps(_canonical(_comparable(collection, doc)), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


async def _digests(db: AsyncDatabase[Document], collection: str) -> dict[str, str]:
    return {str(doc["_id"]): digest(collection, doc) async for doc in db[collection].find({})}


def _checksum(digests: Mapping[str, str]) -> str:
    hasher = hashlib.sha256()
    for key in sorted(digests):
        hasher.update(f"{key}:{digests[key]}\n".encode())
    return hasher.hexdigest()[:16]


async def compare(
    live: AsyncDatabase[Document], rebuilt: AsyncDatabase[Document], *, limit: int = 20
) -> list[CollectionDiff]:
    """Per read-model collection: counts, checksums, and (up to `limit`) differing ids."""
    out = []
    for name in READ_MODEL_COLLECTIONS:
        mine, theirs = await _digests(live, name), await _digests(rebuilt, name)
        diff = CollectionDiff(
            collection=name,
            live_count=len(mine),
            rebuilt_count=len(theirs),
            live_checksum=_checksum(mine),
            rebuilt_checksum=_checksum(theirs),
            only_live=sorted(set(mine) - set(theirs))[:limit],
            only_rebuilt=sorted(set(theirs) - set(mine))[:limit],
            not_compared=sorted(NOT_COMPARED.get(name, ())),
        )
        changed = sorted(k for k in set(mine) & set(theirs) if mine[k] != theirs[k])[:limit]
        for key in changed:
            a = _comparable(name, await live[name].find_one({"_id": key}) or {})
            b = _comparable(name, await rebuilt[name].find_one({"_id": key}) or {})
            fields = sorted(
                k for k in set(a) | set(b) if _canonical(a.get(k)) != _canonical(b.get(k))
            )
            diff.different.append({"id": key, "fields": fields})
        out.append(diff)
    return out


# ---------------------------------------------------------------------------- the target
def default_name(home: str, now: datetime) -> str:
    return f"{home}_rm_{now.strftime('%Y%m%d%H%M%S')}"


async def is_empty(db: AsyncDatabase[Document]) -> bool:
    for name in READ_MODEL_COLLECTIONS:
        if await db[name].find_one({}, projection={"_id": 1}) is not None:
            return False
    return True


async def check_target(
    client: AsyncMongoClient[Document], control: ReadModelControl, pointer: Pointer, name: str
) -> bool:
    """Raises RebuildRefused for a target that must not be written; True when resuming."""
    if name == pointer.database:
        raise RebuildRefused(f"{name} is the live read model: rebuild into another name")
    if name == pointer.home:
        raise RebuildRefused(
            f"{name} is the home database (it holds the read model's pointer): "
            "rebuild into another name"
        )
    if await client[name][CONTROL].find_one({}) is not None:
        raise RebuildRefused(f"{name} is another deployment's home database")
    resuming = await control.rebuild_state(name) is not None
    if not resuming and not await is_empty(client[name]):
        raise RebuildRefused(
            f"{name} already holds read-model documents and no rebuild of it is under way "
            "(the previous read model is dropped with `read-model drop-old`)"
        )
    return resuming


# ---------------------------------------------------------------------------- switching
@dataclass
class SwitchResult:
    pointer: Pointer
    switched: list[str]  # instances now on the new database
    lagging: list[str]  # live instances that had not switched when the wait ended


async def switch(
    control: ReadModelControl, name: str, *, expected: str, wait_seconds: float = 30.0
) -> SwitchResult:
    """Moves the pointer (conditionally), then waits until every live instance follows."""
    switched_at = datetime.now(UTC)
    pointer = await control.switch(name, expected=expected, now=switched_at)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        instances = await control.live_instances(datetime.now(UTC))
        done = [
            str(i["_id"])
            for i in instances
            if i["database"] == name and _aware(i["seen_at"]) >= switched_at
        ]
        lagging = [str(i["_id"]) for i in instances if str(i["_id"]) not in done]
        if not lagging or loop.time() > deadline:
            return SwitchResult(pointer=pointer, switched=done, lagging=lagging)
        await asyncio.sleep(0.2)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class StillInUse(Exception):
    """A live projector instance still uses the database that would be dropped."""


async def drop_previous(
    client: AsyncMongoClient[Document], control: ReadModelControl
) -> str | None:
    """Drops the previous read model's collections (only those: the home database keeps
    the other services' collections); None when there is no previous one."""
    pointer = await control.pointer()
    previous = pointer.previous
    if previous is None:
        return None
    users = [
        str(i["_id"])
        for i in await control.live_instances(datetime.now(UTC))
        if i["database"] == previous
    ]
    if users:
        raise StillInUse(f"{previous} is still used by: {', '.join(users)}")
    for name in READ_MODEL_COLLECTIONS:
        await client[previous].drop_collection(name)
    await control.forget_previous(previous)
    return previous
