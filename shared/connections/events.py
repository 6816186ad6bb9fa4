"""Publishing a connection change: the snapshot as the right event, plus its audit record."""

from __future__ import annotations

from shared.audit import AuditLog
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.contracts.connections import (
    ConnectionAttemptFailed,
    ConnectionConnected,
    ConnectionDisconnected,
    ConnectionSnapshot,
    ConnectionStatusChanged,
)
from shared.contracts.envelope import Envelope
from shared.messaging.publisher import Publisher
from shared.observability.logging import get_logger

log = get_logger(__name__)

_EVENTS: dict[str, type[Envelope]] = {
    "connected": ConnectionConnected,
    "status_changed": ConnectionStatusChanged,
    "disconnected": ConnectionDisconnected,
    "attempt_failed": ConnectionAttemptFailed,
}
_AUDIT = {
    "connected": (AuditOperation.CONNECT, AuditOutcome.SUCCEEDED),
    "disconnected": (AuditOperation.DISCONNECT, AuditOutcome.SUCCEEDED),
    "attempt_failed": (AuditOperation.CONNECT_FAILED, AuditOutcome.FAILED),
}


class ConnectionEvents:
    def __init__(self, publisher: Publisher, audit: AuditLog) -> None:
        self._publisher = publisher
        self._audit = audit

    async def publish(
        self,
        kind: str,
        snapshot: ConnectionSnapshot,
        *,
        cause: Envelope | None = None,
        detail: str | None = None,
    ) -> None:
        event = _EVENTS[kind].build(key=snapshot.connection_id, payload=snapshot, cause=cause)
        await self._publisher.publish(event)
        log.info(  # one line per change of what the card shows
            "connection changed",
            change=kind,
            connection_id=snapshot.connection_id,
            state=snapshot.state.value,
            can_write=snapshot.can_write,
            code=snapshot.last_error.code.value if snapshot.last_error else None,
            initial_import=snapshot.initial_import.state.value if snapshot.initial_import else None,
            version=snapshot.version,
        )
        if kind in _AUDIT:
            operation, outcome = _AUDIT[kind]
            await self._audit.record(
                operation,
                outcome,
                connection_id=snapshot.connection_id,
                user_id=snapshot.user_id,
                detail=detail or (snapshot.last_error.code.value if snapshot.last_error else None),
                cause=event,
            )
