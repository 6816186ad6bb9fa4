"""Every request the emulator served: who called, for which mailbox, how many requests were
in flight for that mailbox at that moment, and the status. Never tokens or secrets."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

LOGGED_HEADERS = (
    "user-agent",
    "client-request-id",
    "return-client-request-id",
    "prefer",
    "if-match",
    "content-type",
    "retry-attempt",
)
_SECRET_PARAMS = frozenset(
    {"code", "client_secret", "refresh_token", "access_token", "id_token", "code_verifier"}
)


def redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs])


@dataclass
class RequestRecord:
    at: datetime
    method: str
    path: str
    query: str
    headers: dict[str, str]
    user_id: str | None
    client_id: str | None
    mailbox: str | None
    concurrency: int  # requests in flight for this mailbox when this one arrived (itself incl.)
    status: int = 0
    duration_ms: float = 0.0
    fault_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


class RequestLog:
    def __init__(self, capacity: int = 10_000) -> None:
        self.records: deque[RequestRecord] = deque(maxlen=capacity)
        self._inflight: dict[str, int] = {}

    def enter(self, mailbox: str | None) -> int:
        if mailbox is None:
            return 0
        self._inflight[mailbox] = self._inflight.get(mailbox, 0) + 1
        return self._inflight[mailbox]

    def leave(self, mailbox: str | None) -> None:
        if mailbox is None:
            return
        remaining = self._inflight.get(mailbox, 0) - 1
        if remaining > 0:
            self._inflight[mailbox] = remaining
        else:
            self._inflight.pop(mailbox, None)

    def add(self, record: RequestRecord) -> None:
        self.records.append(record)

    def clear(self) -> None:
        self.records.clear()

    def query(
        self, *, path_contains: str | None = None, mailbox: str | None = None, limit: int = 1000
    ) -> list[RequestRecord]:
        selected = [
            r
            for r in self.records
            if (path_contains is None or path_contains in r.path)
            and (mailbox is None or r.mailbox == mailbox)
        ]
        return selected[-limit:]
