"""Dead letters: a record a consumer cannot process, kept whole with the reason.

The original value and headers are copied untouched; `x-dlq-*` headers say where it came
from and why, so an operator can fix the cause and replay it onto the source topic. The
reason is redacted the way logs are: a token or code in an exception message never
reaches the topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from shared.observability.logging import redact_text


class DeadLetterReason(StrEnum):
    INVALID_RECORD = "invalid_record"  # not JSON, wrong schema, unknown type
    HANDLER_FAILED = "handler_failed"  # the handler raised a non-retryable error
    RETRIES_EXHAUSTED = "retries_exhausted"  # transient failures went on too long


@dataclass(frozen=True)
class SourceRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]


def dead_letter_headers(
    source: SourceRecord,
    *,
    reason: DeadLetterReason,
    error: str,
    consumer_group: str,
    now: datetime | None = None,
) -> dict[str, str]:
    headers = dict(source.headers)
    headers.update(
        {
            "x-dlq-reason": reason.value,
            "x-dlq-error": redact_text(error)[:1000],  # as logs are: no secret leaves
            "x-dlq-source-topic": source.topic,
            "x-dlq-source-partition": str(source.partition),
            "x-dlq-source-offset": str(source.offset),
            "x-dlq-consumer-group": consumer_group,
            "x-dlq-failed-at": (now or datetime.now(UTC)).isoformat(),
        }
    )
    return headers
