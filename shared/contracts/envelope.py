"""The common envelope every record on every topic carries.

A message class is an `Envelope` subclass that pins `type` to a literal and gives `payload`
its own model. Consumers pick the class by `type` (see `topics.py` for each topic's union).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

EmailAddress = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
    ),
]
"""An address as calendars carry it: syntax only (reserved test domains are fine)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """Base of every published model: strict about unknown fields, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Envelope(Contract):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Unique id of this record.")
    type: str = Field(default="", description="The message type, e.g. `meeting.upserted`.")
    schema_version: int = Field(default=1, ge=1, description="Version of this type's schema.")
    occurred_at: AwareDatetime = Field(
        default_factory=utc_now, description="When it happened (UTC)."
    )
    key: str = Field(
        min_length=1, max_length=200, description="The Kafka key: what orders this record."
    )
    correlation_id: str | None = Field(
        default=None, max_length=200, description="Id shared by every record of one workflow."
    )
    causation_id: str | None = Field(
        default=None, max_length=200, description="Id of the record or request that caused it."
    )
    payload: Any

    @classmethod
    def build(
        cls,
        *,
        key: str,
        payload: Any,
        cause: Envelope | None = None,
        correlation_id: str | None = None,
    ) -> Self:
        """A new record, inheriting correlation from the record that caused it."""
        correlation = correlation_id or (
            (cause.correlation_id or str(cause.id)) if cause is not None else None
        )
        return cls(
            key=key,
            payload=payload,
            correlation_id=correlation,
            causation_id=str(cause.id) if cause is not None else None,
        )

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()
