"""One worker task per connection with work pending; at most one job at a time each.

Kafka handlers and the timer only record pending jobs (durably) and `kick` the worker, so
Graph calls — possibly waiting out a Retry-After — never hold a consumer: other mailboxes
keep flowing. Across syncer instances a lease in the connection's state keeps one worker.

A job costs two round trips of its own: taking the lease returns the state, finishing the
job returns the next state (or, when nothing else is pending, releases the lease in the
same write). A job asked for while the connection's lease is free and a slot is free here
takes the lease in the request's own write (`can_start`, `start`): one round trip less.
A job ends with a `Done`: state fields to save go in that finishing write (a delta round's
new deltaLink), and so does the job it asks for next (`then`: a connect's delta round),
which runs at once under the same lease — neither costs a round trip of its own.

A connection's task is forgotten when it ends, and `on_idle` tells the owner so
per-connection memory (correlation causes) goes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.syncer.adapters.store import SyncerStore
from services.syncer.domain.jobs import Job, backoff_seconds, next_job
from services.syncer.settings import SyncerSettings
from shared.observability.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Done:
    """How a job ended: the state fields its finishing write saves, and the job that write
    asks for next (it runs next, under the same lease)."""

    save: Mapping[str, Any] = field(default_factory=dict)
    then: Job | None = None


# A job: runs under the lease; returns how it ended (None: nothing to save or ask for).
RunJob = Callable[[Job, dict[str, Any]], Awaitable[Done | None]]
OnIdle = Callable[[str], None]


class TryLater(Exception):
    """The job failed transiently: keep it pending and retry after `retry_after` (or a
    backoff)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class ConnectionWorkers:
    def __init__(
        self,
        store: SyncerStore,
        settings: SyncerSettings,
        run_job: RunJob,
        on_idle: OnIdle | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._run_job = run_job
        self._on_idle = on_idle
        self._owner = f"syncer-{uuid.uuid4().hex[:12]}"
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._wakes: dict[str, asyncio.TimerHandle] = {}  # backing off: wake when due
        self._stopped = False
        self._slots = asyncio.Semaphore(settings.max_parallel_connections)

    @property
    def owner(self) -> str:
        """This instance's name on the leases it takes."""
        return self._owner

    def can_start(self, connection_id: str) -> bool:
        """No worker here for the connection and a slot free: a job asked for now can take
        the lease in the same write as the request (`start` then runs it at once)."""
        task = self._tasks.get(connection_id)
        return (task is None or task.done()) and not self._slots.locked()

    def kick(self, connection_id: str) -> None:
        """Makes sure a worker will look at the connection's pending jobs soon."""
        self.start(connection_id, None)

    def start(self, connection_id: str, taken: dict[str, Any] | None) -> None:
        """`kick`, with the state whose lease the caller just took for this instance (or
        None: the worker takes it). A worker already running here looks again at its end:
        the lease is this instance's either way."""
        task = self._tasks.get(connection_id)
        if task is not None and not task.done():
            self._again.add(connection_id)  # the running worker looks once more at the end
            return
        task = asyncio.create_task(self._drain(connection_id, taken), name=f"sync-{connection_id}")
        self._tasks[connection_id] = task
        task.add_done_callback(lambda done: self._finished(connection_id, done))

    def _finished(self, connection_id: str, task: asyncio.Task[None]) -> None:
        """A task ended: forget it (unless a newer one took its place)."""
        if self._tasks.get(connection_id) is task:
            del self._tasks[connection_id]
        if connection_id not in self._tasks and self._on_idle is not None:
            self._on_idle(connection_id)

    def tracked(self) -> int:
        """Connections this instance holds a task or a wake-up timer for."""
        return len(self._tasks.keys() | self._wakes.keys())

    async def cancel(self, connection_id: str) -> None:
        """Stops the connection's in-flight job (disconnect must not wait for a slow round)
        and its wake-up, if it was backing off."""
        wake = self._wakes.pop(connection_id, None)
        if wake is not None:
            wake.cancel()
        task = self._tasks.pop(connection_id, None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def stop(self) -> None:
        self._stopped = True
        for wake in self._wakes.values():
            wake.cancel()
        self._wakes.clear()
        for connection_id in list(self._tasks):
            await self.cancel(connection_id)

    def _wake_when_due(self, connection_id: str, delay: float) -> None:
        """A job backs off: kick the connection again when it is due, here, so a
        Retry-After of 2 s is not waited out until the next tick (the tick still kicks
        every connection with a due job: after a crash, or when another instance has it).
        One timer per connection, gone once it fired."""
        if self._stopped:
            return
        previous = self._wakes.pop(connection_id, None)
        if previous is not None:
            previous.cancel()

        def wake() -> None:
            self._wakes.pop(connection_id, None)
            self.kick(connection_id)

        self._wakes[connection_id] = asyncio.get_running_loop().call_later(delay, wake)

    def busy(self) -> int:
        return sum(not task.done() for task in self._tasks.values())

    async def _drain(self, connection_id: str, taken: dict[str, Any] | None = None) -> None:
        ttl = timedelta(seconds=self._settings.lease_seconds)
        async with self._slots:
            if taken is None or not _fresh(taken, ttl):
                # Taken too long ago (it waited for a slot): renew it, or see who has it.
                ours = taken is not None
                taken = await self._store.take(connection_id, self._owner, _now(), ttl, ours=ours)
            state = taken
            if state is None:
                return  # another instance works on it; its lease runs out if it died
            released = False
            try:
                while True:
                    self._again.discard(connection_id)
                    while state is not None:
                        state = await self._one(connection_id, state, ttl)
                    released = True
                    if connection_id not in self._again:
                        break
                    # Kicked while working: look again with a fresh lease + state.
                    state = await self._store.take(connection_id, self._owner, _now(), ttl)
                    if state is None:
                        break
                    released = False
            finally:
                if not released:
                    with contextlib.suppress(Exception):
                        await self._store.release(connection_id, self._owner)
                if connection_id in self._again:
                    # Kicked after the last look but before this task ended: look again
                    # once this task is done (kick() would only mark the running one).
                    self._again.discard(connection_id)
                    asyncio.get_running_loop().call_soon(self.kick, connection_id)

    async def _one(
        self, connection_id: str, state: dict[str, Any], ttl: timedelta
    ) -> dict[str, Any] | None:
        """Runs the next pending job of `state` (read under our lease); returns the state
        to look at next, or None when there is nothing (more) to do now — the lease is
        released by then."""
        if state.get("lease_owner") != self._owner:
            return None  # the lease ran out and another instance took the connection
        retry_at = state.get("retry_at")
        pending = state.get("pending") or {}
        job = next_job(pending, bool(state.get("active")))
        if job is None or (retry_at is not None and _aware(retry_at) > _now()):
            # Nothing to do, or backing off (woken again when due: `_wake_when_due`).
            await self._store.release(connection_id, self._owner)
            return None
        requested_at = pending[job.value]
        try:
            done = await self._under_lease(connection_id, ttl, self._run_job(job, state))
        except LeaseLost:
            log.warning("lease lost during a job; left to its new owner", job=job.value)
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures = int(state.get("failures") or 0) + 1
            retry_after = exc.retry_after if isinstance(exc, TryLater) else None
            if not isinstance(exc, TryLater):
                log.exception("sync job failed", connection_id=connection_id, job=job.value)
            if failures > self._settings.max_job_failures:
                log.error("sync job abandoned", connection_id=connection_id, job=job.value)
                return await self._finish(connection_id, job, requested_at, ttl)
            delay = retry_after or backoff_seconds(
                failures, self._settings.retry_base_seconds, self._settings.retry_max_seconds
            )
            await self._store.defer(connection_id, _now() + timedelta(seconds=delay), failures)
            await self._store.release(connection_id, self._owner)
            self._wake_when_due(connection_id, delay)
            return None
        return await self._finish(connection_id, job, requested_at, ttl, done)

    async def _finish(
        self,
        connection_id: str,
        job: Job,
        requested_at: Any,
        ttl: timedelta,
        done: Done | None = None,
    ) -> dict[str, Any] | None:
        done = done or Done()
        # The finishing write reads the state as it leaves it: every ask this worker was
        # kicked for so far (each written before its kick) is in it, so none needs a look
        # of its own after the job; a kick from here on marks it again.
        asked_again = connection_id in self._again
        self._again.discard(connection_id)
        try:
            return await self._store.finish(
                connection_id,
                job.value,
                requested_at,
                self._owner,
                _now(),
                ttl,
                save=dict(done.save),
                then=done.then.value if done.then else None,
                asked_again=asked_again,
            )
        except BaseException:
            if asked_again:  # not answered after all: the worker still looks again
                self._again.add(connection_id)
            raise

    async def _under_lease(
        self, connection_id: str, ttl: timedelta, work: Awaitable[Done | None]
    ) -> Done | None:
        """Runs `work` while renewing the lease every third of its life; if a renewal fails
        (this instance stalled past the lease and another took over), the work is
        cancelled so two instances never sync one mailbox at once."""
        job = asyncio.ensure_future(work)
        every = ttl.total_seconds() / 3
        try:
            while True:
                done, _ = await asyncio.wait({job}, timeout=every)
                if done:
                    return job.result()
                if not await self._store.lease(connection_id, self._owner, _now(), ttl):
                    job.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await job
                    raise LeaseLost(connection_id)
        finally:
            if not job.done():
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await job


class LeaseLost(Exception):
    """Another syncer instance holds the connection's lease now."""


def _fresh(taken: dict[str, Any], ttl: timedelta) -> bool:
    """Most of the lease's life is left: safe to work under it before the first renewal."""
    until = taken.get("lease_until")
    return until is not None and _aware(until) - _now() > ttl * 2 / 3


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
