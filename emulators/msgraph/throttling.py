"""Outlook's per-app-per-mailbox limits: 4 concurrent requests and 10,000 per 10 minutes.

Over either limit Graph answers 429 `ApplicationThrottled` with `Retry-After` (seconds).
The window is measured on the emulator clock so tests can move past it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from emulators.msgraph.errors import GraphError

Key = tuple[str, str]  # (client_id, mailbox user id)


@dataclass
class ThrottleLimits:
    max_concurrent: int = 4
    max_requests: int = 10_000
    window_seconds: float = 600.0
    concurrency_retry_after: int = 1  # seconds suggested when over the concurrency limit
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Throttle:
    def __init__(self) -> None:
        self.limits = ThrottleLimits()
        self._inflight: dict[Key, int] = {}
        self._history: dict[Key, deque[datetime]] = {}

    def acquire(self, key: Key, now: datetime) -> None:
        """Admit one request or raise the 429 Graph would send."""
        if not self.limits.enabled:
            self._inflight[key] = self._inflight.get(key, 0) + 1
            return
        if self._inflight.get(key, 0) >= self.limits.max_concurrent:
            raise GraphError(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                headers={"Retry-After": str(self.limits.concurrency_retry_after)},
            )
        history = self._history.setdefault(key, deque())
        window = timedelta(seconds=self.limits.window_seconds)
        while history and now - history[0] >= window:
            history.popleft()
        if len(history) >= self.limits.max_requests:
            wait = (history[0] + window - now).total_seconds()
            raise GraphError(
                429,
                "ApplicationThrottled",
                "Application is over its mailbox request limit (TooManyRequests).",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        history.append(now)
        self._inflight[key] = self._inflight.get(key, 0) + 1

    def release(self, key: Key) -> None:
        remaining = self._inflight.get(key, 0) - 1
        if remaining > 0:
            self._inflight[key] = remaining
        else:
            self._inflight.pop(key, None)

    def reset(self) -> None:
        self.limits = ThrottleLimits()
        self._inflight.clear()
        self._history.clear()

    def update(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if not hasattr(self.limits, key):
                raise KeyError(key)
            setattr(self.limits, key, value)
