"""The audit log: every calendar operation the system performs, one record each.

No tokens, no bodies: who, what, on which ids, with what outcome, and Graph's request id
so an operator can match it with Microsoft's logs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from shared.contracts.envelope import Contract, Envelope


class AuditOperation(StrEnum):
    CONNECT = "connection.connect"
    CONNECT_FAILED = "connection.connect_failed"
    DISCONNECT = "connection.disconnect"
    TOKEN_REFRESH_FAILED = "token.refresh_failed"  # noqa: S105 (not a secret)
    DELTA_ROUND = "graph.delta_round"
    EVENT_CREATE = "graph.event_create"
    EVENT_UPDATE = "graph.event_update"
    EVENT_CANCEL = "graph.event_cancel"
    EVENT_READ = "graph.event_read"
    SUBSCRIPTION_CREATE = "graph.subscription_create"
    SUBSCRIPTION_RENEW = "graph.subscription_renew"
    SUBSCRIPTION_DELETE = "graph.subscription_delete"
    NOTIFICATION_REJECTED = "notification.rejected"
    WRITE_REFUSED = "write.refused"
    DLQ_REDRIVE = "dlq.redrive"  # an operator put a dead letter back to its group
    OFFSETS_RESET = "offsets.reset"
    SYNC_RELAUNCHED = "sync.relaunched"  # the syncer's watchdog relaunched a stuck connection
    SYNC_RESYNC_REQUESTED = "sync.resync_requested"  # an operator asked for a full resync


class AuditOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"


class AuditEntry(Contract):
    operation: AuditOperation
    outcome: AuditOutcome
    service: Literal["ingress", "syncer", "writer", "projector"]
    connection_id: str | None = None
    user_id: str | None = None
    target_ids: list[str] = Field(default_factory=list, max_length=100)
    command_id: str | None = None
    http_status: int | None = None
    graph_request_id: str | None = Field(default=None, max_length=100)
    detail: str | None = Field(default=None, max_length=1000)
    at: AwareDatetime


class AuditRecorded(Envelope):
    type: Literal["audit.recorded"] = "audit.recorded"
    payload: AuditEntry
