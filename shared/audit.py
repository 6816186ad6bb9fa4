"""Recording an audit entry: one call per calendar operation, from any service.

The audit topic is the durable log (long retention, never compacted). An entry never
carries tokens or bodies: only who, what, which ids, the outcome and Graph's request id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from shared.contracts.audit import AuditEntry, AuditOperation, AuditOutcome, AuditRecorded
from shared.contracts.envelope import Envelope
from shared.messaging.publisher import Publisher

ServiceName = Literal["ingress", "syncer", "writer", "projector"]


class AuditLog:
    def __init__(self, publisher: Publisher, service: ServiceName) -> None:
        self._publisher = publisher
        self._service = service

    async def record(
        self,
        operation: AuditOperation,
        outcome: AuditOutcome,
        *,
        connection_id: str | None = None,
        user_id: str | None = None,
        target_ids: Sequence[str] = (),
        command_id: str | None = None,
        http_status: int | None = None,
        graph_request_id: str | None = None,
        detail: str | None = None,
        cause: Envelope | None = None,
    ) -> AuditRecorded:
        entry = AuditEntry(
            operation=operation,
            outcome=outcome,
            service=self._service,
            connection_id=connection_id,
            user_id=user_id,
            target_ids=list(target_ids),
            command_id=command_id,
            http_status=http_status,
            graph_request_id=graph_request_id,
            detail=detail[:1000] if detail else None,
            at=datetime.now(UTC),
        )
        record = AuditRecorded.build(
            key=connection_id or user_id or "-", payload=entry, cause=cause
        )
        await self._publisher.publish(record)
        return record
