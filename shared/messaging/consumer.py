"""Consuming a topic safely and concurrently: the keyed batched consumer (ADR 0013).

Built on aiokafka's `getmany`: each poll brings a batch per partition; records are grouped
into *lanes* by their Kafka key (the connection or mailbox), and lanes run concurrently —
at most `consumer_max_in_flight` at once per consumer — while each lane handles its
records in offset order. So a slow mailbox (Graph retries, a backoff) never holds up the
other mailboxes of its partition, and the poll loop keeps running (no max.poll.interval
rebalance storm).

- Offsets are committed per partition as a *watermark*: up to the lowest offset not yet
  applied or dead-lettered, after every poll (at-least-once; a redelivery is harmless
  because every handler is idempotent).
- Backpressure: a partition with more than `consumer_max_pending_per_partition` unfinished
  records is paused until half of them are done.
- A record that doesn't parse, or whose handler fails with a non-transient error (a bug,
  an invalid record), goes to the topic's dead-letter topic with the (redacted) reason.
- A transient failure (`failures.is_transient`: MongoDB, Kafka, Graph 5xx/429, network) is
  retried with capped jittered backoff for as long as it takes; never dead-lettered.
- `batch=True`: the handler gets a list of parsed records of one partition, at most 500
  (the projector applies them as one bulk write). A batch failing for good is retried
  record by record, so only the poison record is dead-lettered.
- Stop (SIGTERM): no new records start, those in flight finish, the watermark is
  committed; a record still waiting for a retry is left uncommitted (redelivered).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from shared.contracts.topics import TopicSpec
from shared.messaging.dead_letter import DeadLetterReason, SourceRecord, dead_letter_headers
from shared.messaging.failures import Retryable, backoff, is_transient
from shared.messaging.handler_table import GroupHandler, register
from shared.observability import metrics
from shared.observability.logging import (
    bind_correlation,
    clear_correlation,
    get_logger,
    redact_text,
)
from shared.settings import Settings

__all__ = ["KeyedConsumer", "Retryable", "consumers_of", "subscribe"]

log = get_logger(__name__)

Handler = Callable[[Any], Awaitable[None]]
BatchHandler = Callable[[list[Any]], Awaitable[None]]

_POLL_MS = 200
_MAX_RECORDS = 1000
_MAX_BATCH = 500  # records per call of a batch handler
_LAG_EVERY = 5.0


@dataclass
class _Item:
    source: SourceRecord


@dataclass
class _Lane:
    queue: deque[_Item] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


@dataclass
class _Partition:
    tp: TopicPartition
    pending: set[int] = field(default_factory=set)  # fetched, not yet applied/dead-lettered
    fetched_to: int | None = None  # the offset after the last fetched record
    committed: int | None = None
    paused: bool = False
    closing: bool = False  # revoked or stopping: start nothing new
    running: int = 0  # handlers running now
    lanes: dict[bytes, _Lane] = field(default_factory=dict)

    def watermark(self) -> int | None:
        return min(self.pending) if self.pending else self.fetched_to


def consumers_of(broker: KafkaBroker) -> list[Any]:
    """The consumers registered on the broker (group, topics, `lag()`)."""
    consumers = getattr(broker, "consumers", None)
    if consumers is None:
        raise TypeError("use shared.messaging.broker.create_broker: it runs the consumers")
    return consumers  # type: ignore[no-any-return]


def subscribe(
    broker: KafkaBroker,
    settings: Settings,
    spec: TopicSpec,
    service: str,
    handler: Handler | BatchHandler,
    *,
    batch: bool = False,
    max_in_flight: int | None = None,
    base_backoff: float = 0.5,
    max_backoff: float = 30.0,
) -> KeyedConsumer:
    """Registers `handler(envelope)` (or `handler([envelope, ...])` with `batch=True`) for
    every record of `spec`, with the dead-letter path; runs while the broker runs."""
    consumer = KeyedConsumer(
        broker=broker,
        settings=settings,
        spec=spec,
        service=service,
        handler=handler,
        batch=batch,
        max_in_flight=max_in_flight or settings.consumer_max_in_flight,
        base_backoff=base_backoff,
        max_backoff=max_backoff,
    )
    consumers_of(broker).append(consumer)
    # `dlq redrive` and `read-model rebuild` call the group's own handler (operators).
    register(
        broker,
        GroupHandler(
            group=consumer.group, service=service, spec=spec, handler=handler, batch=batch
        ),
    )
    return consumer


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: KeyedConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._owner._revoke(list(revoked))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._owner._assign(list(assigned))


class KeyedConsumer:
    """One consumer group on one topic, its records worked per key, concurrently."""

    def __init__(
        self,
        *,
        broker: KafkaBroker,
        settings: Settings,
        spec: TopicSpec,
        service: str,
        handler: Handler | BatchHandler,
        batch: bool,
        max_in_flight: int,
        base_backoff: float,
        max_backoff: float,
    ) -> None:
        self._broker = broker
        self._settings = settings
        self._spec = spec
        self._service = service
        self._handler = handler
        self._batch = batch
        self._adapter = spec.adapter()
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._max_pending = settings.consumer_max_pending_per_partition
        self.topic = settings.topic(spec)
        self.topics = (self.topic,)
        self.dead_letter_topic = settings.dead_letter_topic(spec)
        # One consumer group per (service, topic): subscribers of one service don't
        # rebalance each other, and each topic's offsets are its own.
        self.group = f"{settings.group_id(service)}.{spec.name}"
        self._slots = asyncio.Semaphore(max_in_flight)
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._poller: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._lanes_idle = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._stopping.clear()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=self.group,
            client_id=f"smvue-{self._service}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        consumer.subscribe([self.topic], listener=_Listener(self))
        self._consumer = consumer
        self._poller = asyncio.create_task(self._poll(), name=f"consume-{self.group}")

    async def stop(self) -> None:
        """Finish what is in flight (up to the shutdown grace), commit, leave the group."""
        if self._consumer is None:
            return
        self._stopping.set()
        if self._poller is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for part in self._partitions.values():
            part.closing = True
        tasks = self._lane_tasks()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._settings.shutdown_grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._commit()
        consumer, self._consumer = self._consumer, None
        await consumer.stop()
        log.info("consumer stopped", group=self.group)

    def lag(self) -> dict[tuple[str, int], int]:
        """Records per partition not yet committed: the broker's high watermark minus what
        this consumer has committed (or will start from)."""
        out: dict[tuple[str, int], int] = {}
        consumer = self._consumer
        if consumer is None:
            return out
        for tp, part in list(self._partitions.items()):
            high = consumer.highwater(tp)
            done = part.committed if part.committed is not None else part.watermark()
            if high is None or done is None:
                continue
            out[(tp.topic, tp.partition)] = max(0, high - done)
        return out

    # ------------------------------------------------------------------ the poll loop
    async def _poll(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        loop = asyncio.get_running_loop()
        next_lag = loop.time()
        while not self._stopping.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=_POLL_MS, max_records=_MAX_RECORDS)
                for tp, records in batches.items():
                    self._enqueue(tp, records)
                self._flow_control()
                await self._commit()
                if loop.time() >= next_lag:
                    await self._export_lag()
                    next_lag = loop.time() + _LAG_EVERY
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                log.warning("poll failed, retrying", group=self.group, error=repr(exc))
                await self._sleep(1.0)
            except Exception:
                log.exception("consumer loop error", group=self.group)
                await self._sleep(1.0)

    def _enqueue(self, tp: TopicPartition, records: list[ConsumerRecord[Any, Any]]) -> None:
        part = self._partitions.get(tp)
        if part is None or part.closing:
            return
        for record in records:
            source = SourceRecord(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value or b"",
                headers={k: v.decode(errors="replace") for k, v in record.headers},
            )
            part.pending.add(record.offset)
            part.fetched_to = record.offset + 1
            lane_key = b"" if self._batch else (record.key or b"")
            lane = part.lanes.setdefault(lane_key, _Lane())
            lane.queue.append(_Item(source))
            if lane.task is None:
                lane.task = asyncio.create_task(self._run_lane(part, lane_key, lane))
        metrics.CONSUMER_IN_FLIGHT.labels(group=self.group, topic=self._spec.name).set(
            sum(len(p.pending) for p in self._partitions.values())
        )

    def _flow_control(self) -> None:
        assert self._consumer is not None
        for tp, part in self._partitions.items():
            if not part.paused and len(part.pending) >= self._max_pending:
                self._consumer.pause(tp)
                part.paused = True
                log.info("partition paused", group=self.group, partition=tp.partition)
            elif part.paused and len(part.pending) <= self._max_pending // 2:
                self._consumer.resume(tp)
                part.paused = False

    async def _commit(self, only: list[TopicPartition] | None = None) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        offsets = {}
        for tp, part in self._partitions.items():
            if only is not None and tp not in only:
                continue
            mark = part.watermark()
            if mark is not None and (part.committed is None or mark > part.committed):
                offsets[tp] = mark
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance under way: the next owner redelivers
            log.warning("commit failed", group=self.group, error=repr(exc))
            return
        for tp, mark in offsets.items():
            if tp in self._partitions:
                self._partitions[tp].committed = mark

    async def _export_lag(self) -> None:
        lags = self.lag()
        consumer = self._consumer
        idle = [tp for tp in list(self._partitions) if (tp.topic, tp.partition) not in lags]
        if consumer is not None and idle:
            # Nothing fetched yet (an idle partition): the broker's end offset and the
            # position this consumer starts from tell its lag.
            try:
                ends = await consumer.end_offsets(idle)
                for tp in idle:
                    position = await consumer.position(tp)
                    lags[(tp.topic, tp.partition)] = max(0, ends[tp] - position)
            except (KafkaError, AssertionError, KeyError) as exc:
                log.debug("lag of idle partitions unknown", group=self.group, error=repr(exc))
        for (topic, partition), lag in lags.items():
            metrics.CONSUMER_LAG.labels(
                group=self.group, topic=topic, partition=str(partition)
            ).set(lag)

    # ------------------------------------------------------------------ rebalancing
    def _assign(self, assigned: list[TopicPartition]) -> None:
        for tp in assigned:
            if tp not in self._partitions or self._partitions[tp].closing:
                self._partitions[tp] = _Partition(tp)

    async def _revoke(self, revoked: list[TopicPartition]) -> None:
        """Let in-flight handlers of these partitions finish (bounded), commit, forget."""
        parts = [self._partitions[tp] for tp in revoked if tp in self._partitions]
        for part in parts:
            part.closing = True
        tasks = [lane.task for part in parts for lane in part.lanes.values() if lane.task]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._settings.shutdown_grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._commit(only=[part.tp for part in parts])
        for part in parts:
            self._partitions.pop(part.tp, None)
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(self.group, part.tp.topic, str(part.tp.partition))

    def _lane_tasks(self) -> list[asyncio.Task[None]]:
        return [
            lane.task
            for part in self._partitions.values()
            for lane in part.lanes.values()
            if lane.task is not None
        ]

    # ------------------------------------------------------------------ lanes
    async def _run_lane(self, part: _Partition, lane_key: bytes, lane: _Lane) -> None:
        try:
            while lane.queue and not part.closing and not self._stopping.is_set():
                if self._batch:
                    # At most _MAX_BATCH at once: a backlog is parsed a slice at a time, not
                    # every fetched record of the partition together (memory).
                    items = [lane.queue.popleft() for _ in range(min(_MAX_BATCH, len(lane.queue)))]
                else:
                    items = [lane.queue[0]]
                part.running += 1
                try:
                    done = await self._work(items)
                finally:
                    part.running -= 1
                if not done:
                    return  # stopping while waiting for a retry: left uncommitted
                if not self._batch:
                    lane.queue.popleft()
                for item in items:
                    part.pending.discard(item.source.offset)
        finally:
            lane.task = None
            if not lane.queue:
                part.lanes.pop(lane_key, None)

    async def _work(self, items: list[_Item]) -> bool:
        """Applies or dead-letters every item; False if stopped before that."""
        parsed: list[tuple[_Item, Any]] = []
        for item in items:
            try:
                parsed.append((item, self._adapter.validate_json(item.source.value)))
            except ValidationError as exc:
                if not await self._dead_letter(
                    item.source, DeadLetterReason.INVALID_RECORD, _describe(exc)
                ):
                    return False
        if not parsed:
            return True
        if self._batch:
            outcome = await self._attempt([env for _, env in parsed], parsed[0][1])
            if outcome is None:
                return False
            if outcome is True:
                return True
            # The batch failed for good: find the record(s) at fault, one at a time.
            for item, envelope in parsed:
                if not await self._one(item, envelope):
                    return False
            return True
        item, envelope = parsed[0]
        return await self._one(item, envelope)

    async def _one(self, item: _Item, envelope: Any) -> bool:
        outcome = await self._attempt([envelope] if self._batch else envelope, envelope)
        if outcome is None:
            return False
        if isinstance(outcome, BaseException):
            log.error(
                "handler failed", offset=item.source.offset, error=f"{type(outcome).__name__}"
            )
            return await self._dead_letter(
                item.source, DeadLetterReason.HANDLER_FAILED, f"{type(outcome).__name__}: {outcome}"
            )
        return True

    async def _attempt(self, argument: Any, first: Any) -> bool | BaseException | None:
        """Runs the handler until it succeeds (True) or fails for good (the exception);
        transient failures are retried without bound. None: stopped meanwhile."""
        attempt = 0
        count = len(argument) if isinstance(argument, list) else 1
        while True:
            async with self._slots:
                bind_correlation(first.correlation_id or str(first.id), str(first.id))
                try:
                    with metrics.HANDLER_SECONDS.labels(
                        service=self._service, topic=self._spec.name
                    ).time():
                        await self._handler(argument)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not is_transient(exc):
                        return exc
                    error: BaseException = exc
                else:
                    metrics.RECORDS_HANDLED.labels(
                        service=self._service, topic=self._spec.name
                    ).inc(count)
                    return True
                finally:
                    clear_correlation()
            attempt += 1
            delay = backoff(attempt, error, base=self._base_backoff, cap=self._max_backoff)
            log.info(
                "retrying after a transient failure",
                group=self.group,
                attempt=attempt,
                delay=round(delay, 3),
                error=redact_text(f"{type(error).__name__}: {error}")[:300],
            )
            if await self._sleep(delay):
                return None

    async def _dead_letter(
        self, source: SourceRecord, reason: DeadLetterReason, error: str
    ) -> bool:
        """Publishes the record to the dead-letter topic (retrying while Kafka is away)."""
        error = redact_text(error)
        attempt = 0
        while True:
            try:
                await self._broker.publish(
                    source.value,
                    topic=self.dead_letter_topic,
                    key=source.key,
                    headers=dead_letter_headers(
                        source, reason=reason, error=error, consumer_group=self.group
                    ),
                )
                break
            except Exception as exc:
                attempt += 1
                log.warning("dead-letter publish failed", error=repr(exc), attempt=attempt)
                if await self._sleep(backoff(attempt, exc, base=self._base_backoff)):
                    return False
        metrics.DEAD_LETTERS.labels(
            service=self._service, topic=self._spec.name, reason=reason.value
        ).inc()
        log.warning(
            "record dead-lettered",
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
            reason=reason.value,
            error=error[:300],
        )
        return True

    async def _sleep(self, seconds: float) -> bool:
        """Sleeps; True if the consumer is stopping (the caller gives up)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "record"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
