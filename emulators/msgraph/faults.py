"""Injected faults: matched by method + path regex, they add latency and/or answer an error
(with Retry-After) instead of the real handler, or hold the real handler's answer back,
`count` times (or until cleared)."""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FaultRule:
    path_regex: str
    method: str = "*"
    status: int | None = 503  # None = latency only, then the real handler
    retry_after: int | None = None  # seconds, sent as Retry-After
    latency_ms: int = 0
    # Run the real handler (status None), then hold its answer: the write happened but the
    # client hears late — or never, if it dies meanwhile (the crash-after-create case).
    answer_delay_ms: int = 0
    mailbox: str | None = None  # only requests on this mailbox (user id); None = any
    count: int | None = 1  # remaining matches; None = until cleared
    code: str | None = None  # Graph error code; defaults by status
    message: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_regex)

    def matches(self, method: str, path: str, mailbox: str | None = None) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.mailbox is not None and self.mailbox != mailbox:
            return False
        method_ok = self.method == "*" or self.method.upper() == method.upper()
        return method_ok and self._pattern.search(path) is not None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


_DEFAULT_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Forbidden",
    404: "ResourceNotFound",
    409: "Conflict",
    412: "PreconditionFailed",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def default_code(status: int) -> str:
    return _DEFAULT_CODES.get(status, "UnknownError")


class FaultInjector:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def take(self, method: str, path: str, mailbox: str | None = None) -> FaultRule | None:
        """The first matching rule, its remaining count consumed."""
        for rule in self.rules:
            if rule.matches(method, path, mailbox):
                rule.hits += 1
                if rule.count is not None:
                    rule.count -= 1
                return rule
        return None

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self) -> None:
        self.rules.clear()
