"""Group commit of the meeting writes: the batches of every partition, applied together.

The consumer engine hands the projector one partition's records at a time (ADR 0013), and
the meetings topic has six partitions: at a steady few changes a second each batch is a
single record, so each Outlook change cost one bulk write of its own. `GroupedWrites`
collects the batches that arrive within `linger` seconds of the first (or while a write
is under way) and applies them as one bulk write — the writes coalesced again across the
batches (`merge.coalesce`: versions decide, so the partitions' relative order doesn't
matter). Each caller returns when the write holding its batch is applied, so the engine
commits an offset only after its records are in the read model.

A failed group write is retried by each caller alone: a poison record then fails only its
own batch (which the engine splits to find it), never a neighbour's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from services.projector.domain.merge import VersionedWrite, coalesce

Apply = Callable[[Sequence[VersionedWrite]], Awaitable[int]]


@dataclass
class _Waiting:
    writes: Sequence[VersionedWrite]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupedWrites:
    def __init__(self, apply: Apply, *, linger: float, max_writes: int = 1000) -> None:
        self._apply = apply
        self._linger = linger
        self._max_writes = max_writes
        self._queue: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None
        self.group_writes = 0  # bulk writes made (operators' metric; tests)

    async def apply(self, writes: Sequence[VersionedWrite]) -> None:
        """Applies `writes` with whatever else arrives meanwhile; returns once applied."""
        if not writes:
            return
        waiting = _Waiting(writes)
        self._queue.append(waiting)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="projector-group-commit")
        await asyncio.shield(waiting.done)  # a cancelled caller leaves the group intact

    async def _flush_all(self) -> None:
        group: list[_Waiting] = []
        try:
            if self._linger > 0:
                await asyncio.sleep(self._linger)
            while self._queue:
                group = self._take_group()
                await self._flush(group)
                group = []
        except asyncio.CancelledError:
            for waiting in [*group, *self._queue]:  # stopping: nobody is left waiting
                waiting.done.cancel()
            self._queue.clear()
            raise

    def _take_group(self) -> list[_Waiting]:
        group = [self._queue.pop(0)]
        size = len(group[0].writes)
        while self._queue and size + len(self._queue[0].writes) <= self._max_writes:
            size += len(self._queue[0].writes)
            group.append(self._queue.pop(0))
        return group

    async def _flush(self, group: list[_Waiting]) -> None:
        try:
            self.group_writes += 1
            await self._apply(coalesce(w for waiting in group for w in waiting.writes))
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0], exc)
                return
            for waiting in group:  # each on its own: only the failing batch fails
                await self._alone(waiting)
            return
        for waiting in group:
            _settle(waiting, None)

    async def _alone(self, waiting: _Waiting) -> None:
        try:
            self.group_writes += 1
            await self._apply(coalesce(waiting.writes))
        except Exception as exc:
            _settle(waiting, exc)
        else:
            _settle(waiting, None)


def _settle(waiting: _Waiting, error: Exception | None) -> None:
    if waiting.done.done():
        return
    if error is None:
        waiting.done.set_result(None)
    else:
        waiting.done.set_exception(error)
