"""Outlook's per-mailbox limits, kept on our side: never more than 4 requests in flight
per mailbox, and when Graph says "Retry-After" for one mailbox, only that mailbox waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


class _Mailbox:
    def __init__(self, concurrency: int) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.blocked_until = 0.0
        self.users = 0


class MailboxLimiter:
    def __init__(self, concurrency: int = 4) -> None:
        self._concurrency = concurrency
        self._mailboxes: dict[str, _Mailbox] = {}

    @contextlib.asynccontextmanager
    async def slot(self, mailbox: str) -> AsyncIterator[None]:
        box = self._mailboxes.setdefault(mailbox, _Mailbox(self._concurrency))
        box.users += 1
        try:
            async with box.semaphore:
                wait = box.blocked_until - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                yield
        finally:
            box.users -= 1
            if box.users == 0 and box.blocked_until <= time.monotonic():
                self._mailboxes.pop(mailbox, None)

    def block(self, mailbox: str, seconds: float) -> None:
        """Graph asked this mailbox to back off: later requests for it wait that long."""
        box = self._mailboxes.setdefault(mailbox, _Mailbox(self._concurrency))
        box.blocked_until = max(box.blocked_until, time.monotonic() + seconds)

    def blocked_for(self, mailbox: str) -> float:
        """Seconds this mailbox must still wait before its next request (0 if none)."""
        box = self._mailboxes.get(mailbox)
        return 0.0 if box is None else max(0.0, box.blocked_until - time.monotonic())

    def in_flight(self, mailbox: str) -> int:
        box = self._mailboxes.get(mailbox)
        return 0 if box is None else self._concurrency - box.semaphore._value
