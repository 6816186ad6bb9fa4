"""Asynchronous, batched webhook delivery with retries and test-controlled misbehaviour.

Items bound for the same URL within a short window go out as one `{"value": [...]}` POST.
Non-2xx answers and network errors are retried with exponential backoff (scaled down by
settings); when retries run out the subscription gets a `missed` lifecycle notification.
The control API can delay, duplicate, reorder, drop and pause deliveries, as the real
service's are late, duplicated and out of order at times.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import httpx

from emulators.msgraph.subscriptions.settings import NotificationSettings
from emulators.msgraph.subscriptions.transport import outbound_client


@dataclass
class Outgoing:
    url: str
    item: dict[str, Any]  # one changeNotification
    subscription_id: str
    lifecycle: bool
    attempt: int = 0
    not_before: float = 0.0  # loop time


@dataclass
class DeliveryControls:
    """Set through the control API; each `*_next` counter applies to that many items/batches."""

    paused: bool = False
    delay_seconds: float = 0.0
    duplicate_next: int = 0  # items delivered twice
    reorder_next: int = 0  # batches delivered in reverse order
    drop_next: int = 0  # change notifications dropped (the subscription gets `missed`)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeliveryAttempt:
    """What the emulator POSTed where and what it got back (never the payload's secrets)."""

    url: str
    count: int
    lifecycle: bool
    status: int | None
    error: str | None
    attempt: int
    at: datetime

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


@dataclass
class _Stats:
    delivered: int = 0
    dropped: int = 0
    gave_up: int = 0
    attempts: list[DeliveryAttempt] = field(default_factory=list)


Missed = Callable[[str], None]  # subscription id → emit `missed`


class Dispatcher:
    """One background task per running event loop; started on first enqueue."""

    def __init__(
        self, settings: NotificationSettings, now: Callable[[], datetime], on_missed: Missed
    ) -> None:
        self.settings = settings
        self.controls = DeliveryControls()
        self._now = now
        self._on_missed = on_missed
        self._pending: list[Outgoing] = []
        self._inflight = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.stats = _Stats()

    # --- queueing ----------------------------------------------------------------------------

    def enqueue(
        self, url: str, item: dict[str, Any], subscription_id: str, lifecycle: bool
    ) -> None:
        controls = self.controls
        if not lifecycle and controls.drop_next > 0:
            controls.drop_next -= 1
            self.stats.dropped += 1
            self._on_missed(subscription_id)
            return
        copies = 1
        if not lifecycle and controls.duplicate_next > 0:
            controls.duplicate_next -= 1
            copies = 2
        for _ in range(copies):
            self._pending.append(
                Outgoing(url, item, subscription_id, lifecycle, not_before=self._delay())
            )
        self._kick()

    def _delay(self) -> float:
        try:
            loop_time = asyncio.get_running_loop().time()
        except RuntimeError:
            return 0.0
        return loop_time + self.controls.delay_seconds if self.controls.delay_seconds else 0.0

    def _kick(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): the next enqueue or flush starts delivery
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="graph-emulator-notifications")
        assert self._wake is not None
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending) + self._inflight

    # --- control -----------------------------------------------------------------------------

    def pause(self) -> None:
        self.controls.paused = True

    async def flush(self, within: float = 30.0) -> None:
        """Unpause, deliver everything queued now (ignoring delays) and wait until done."""
        self.controls.paused = False
        for outgoing in self._pending:
            outgoing.not_before = 0.0
        self._kick()
        await self.wait_idle(within)

    async def wait_idle(self, within: float = 30.0) -> None:
        """Until nothing is queued or in flight (retries included)."""
        async with asyncio.timeout(within):
            while self.pending:
                if self.controls.paused:
                    return
                self._kick()
                await asyncio.sleep(0.01)

    def clear(self) -> None:
        self._pending.clear()
        self.controls = DeliveryControls()
        self.stats = _Stats()

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    # --- the worker --------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._wake is not None
        wake = self._wake
        async with outbound_client(
            self.settings.verify, self.settings.delivery_timeout_seconds
        ) as http:
            while True:
                wait = self._next_wait()
                wake.clear()
                if wait is None or wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=wait)
                    continue
                # Let items arriving together coalesce into one batch.
                await asyncio.sleep(self.settings.batch_window_seconds)
                due = self._take_due()
                if due:
                    await self._send_all(http, due)

    def _next_wait(self) -> float | None:
        """Seconds until the earliest item is due; None = nothing to do (or paused)."""
        if not self._pending or self.controls.paused:
            return None
        now = asyncio.get_running_loop().time()
        return max(0.0, min(o.not_before for o in self._pending) - now)

    def _take_due(self) -> list[Outgoing]:
        if self.controls.paused:
            return []
        now = asyncio.get_running_loop().time()
        due = [o for o in self._pending if o.not_before <= now]
        self._pending = [o for o in self._pending if o.not_before > now]
        self._inflight += len(due)
        return due

    async def _send_all(self, http: httpx.AsyncClient, due: list[Outgoing]) -> None:
        by_url: dict[tuple[str, bool], list[Outgoing]] = {}
        for outgoing in due:
            by_url.setdefault((outgoing.url, outgoing.lifecycle), []).append(outgoing)
        batches: list[list[Outgoing]] = []
        size = max(1, self.settings.max_batch_size)
        for items in by_url.values():
            batches.extend(items[i : i + size] for i in range(0, len(items), size))
        for batch in batches:
            if self.controls.reorder_next > 0 and len(batch) > 1:
                self.controls.reorder_next -= 1
                batch.reverse()
        try:
            await asyncio.gather(*(self._send(http, batch) for batch in batches))
        finally:
            self._inflight -= len(due)

    async def _send(self, http: httpx.AsyncClient, batch: list[Outgoing]) -> None:
        first = batch[0]
        status: int | None = None
        error: str | None = None
        try:
            response = await http.post(first.url, json={"value": [o.item for o in batch]})
            status = response.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        self.stats.attempts.append(
            DeliveryAttempt(
                url=first.url,
                count=len(batch),
                lifecycle=first.lifecycle,
                status=status,
                error=error,
                attempt=first.attempt,
                at=self._now(),
            )
        )
        del self.stats.attempts[:-1000]
        if status is not None and 200 <= status < 300:
            self.stats.delivered += len(batch)
            return
        self._retry(batch)

    def _retry(self, batch: list[Outgoing]) -> None:
        now = asyncio.get_running_loop().time()
        missed: set[str] = set()
        for outgoing in batch:
            outgoing.attempt += 1
            if outgoing.attempt >= self.settings.retry_max_attempts:
                self.stats.gave_up += 1
                if not outgoing.lifecycle:
                    missed.add(outgoing.subscription_id)
                continue
            backoff = self.settings.retry_base_seconds * 2 ** (outgoing.attempt - 1)
            outgoing.not_before = now + backoff
            self._pending.append(outgoing)
        for subscription_id in missed:
            self._on_missed(subscription_id)
