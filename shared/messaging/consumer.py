"""Consuming a topic safely: parse, handle, and never lose or block on a bad record.

- Offsets are committed only after the handler finished (at-least-once).
- A record that doesn't parse, or whose handler fails for good, goes to the topic's
  dead-letter topic with the reason; the consumer goes on with the next record.
- A `Retryable` failure (Graph busy, Mongo briefly gone) re-delivers the same record after
  a backoff, up to a bound, then dead-letters it: order per key is kept meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from shared.contracts.topics import TopicSpec
from shared.messaging.dead_letter import DeadLetterReason, SourceRecord, dead_letter_headers
from shared.messaging.handler_table import GroupHandler, register
from shared.observability import metrics
from shared.observability.logging import bind_correlation, clear_correlation, get_logger
from shared.settings import Settings

log = get_logger(__name__)

Handler = Callable[[Any], Awaitable[None]]


class Retryable(Exception):
    """A transient failure: the same record is retried after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Attempts:
    """Counts attempts per (partition, offset) so a transient failure can't loop forever."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, int], int] = {}

    def next(self, partition: int, offset: int) -> int:
        key = (partition, offset)
        self._counts[key] = self._counts.get(key, 0) + 1
        if len(self._counts) > 10_000:
            self._counts = {key: self._counts[key]}
        return self._counts[key]

    def done(self, partition: int, offset: int) -> None:
        self._counts.pop((partition, offset), None)


def subscribe(
    broker: KafkaBroker,
    settings: Settings,
    spec: TopicSpec,
    service: str,
    handler: Handler,
    *,
    max_attempts: int = 8,
    base_backoff: float = 0.5,
    max_backoff: float = 30.0,
) -> None:
    """Registers `handler(envelope)` for every record of `spec`, with the dead-letter path."""
    adapter = spec.adapter()
    topic = settings.topic(spec)
    dead_letter_topic = settings.dead_letter_topic(spec)
    # One consumer group per (service, topic): subscribers of one service don't rebalance
    # each other, and each topic's offsets are its own.
    group = f"{settings.group_id(service)}.{spec.name}"
    attempts = _Attempts()
    register(broker, GroupHandler(group=group, service=service, spec=spec, handler=handler))

    async def dead_letter(source: SourceRecord, reason: DeadLetterReason, error: str) -> None:
        await broker.publish(
            source.value,
            topic=dead_letter_topic,
            key=source.key,
            headers=dead_letter_headers(source, reason=reason, error=error, consumer_group=group),
        )
        metrics.DEAD_LETTERS.labels(service=service, topic=spec.name, reason=reason.value).inc()
        log.warning(
            "record dead-lettered",
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
            reason=reason.value,
            error=error[:300],
        )

    @broker.subscriber(
        topic,
        group_id=group,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        auto_offset_reset="earliest",
        title=f"{service}:{spec.name}",
    )
    async def on_record(message: KafkaMessage) -> None:
        raw = message.raw_message
        source = SourceRecord(
            topic=raw.topic,  # type: ignore[union-attr]
            partition=raw.partition,  # type: ignore[union-attr]
            offset=raw.offset,  # type: ignore[union-attr]
            key=raw.key,  # type: ignore[union-attr]
            value=message.body,
            headers={k: str(v) for k, v in message.headers.items()},
        )
        try:
            envelope = adapter.validate_json(source.value)
        except ValidationError as exc:
            await dead_letter(source, DeadLetterReason.INVALID_RECORD, _describe(exc))
            return
        bind_correlation(envelope.correlation_id or str(envelope.id), str(envelope.id))
        try:
            with metrics.HANDLER_SECONDS.labels(service=service, topic=spec.name).time():
                await handler(envelope)
        except Retryable as exc:
            attempt = attempts.next(source.partition, source.offset)
            if attempt >= max_attempts:
                attempts.done(source.partition, source.offset)
                await dead_letter(source, DeadLetterReason.RETRIES_EXHAUSTED, str(exc))
                return
            delay = exc.retry_after or min(max_backoff, base_backoff * 2 ** (attempt - 1))
            log.info("retrying record", offset=source.offset, attempt=attempt, delay=delay)
            await asyncio.sleep(delay)
            raise  # nack: the same record is delivered again
        except Exception as exc:
            log.exception("handler failed", offset=source.offset)
            await dead_letter(
                source, DeadLetterReason.HANDLER_FAILED, f"{type(exc).__name__}: {exc}"
            )
        else:
            attempts.done(source.partition, source.offset)
            metrics.RECORDS_HANDLED.labels(service=service, topic=spec.name).inc()
        finally:
            clear_correlation()


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "record"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
