"""The worker's lease: renewed while a long job runs; a job whose lease another instance
took is cancelled, so two syncers never work one mailbox at once (no servers needed)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from services.syncer.domain.jobs import Job
from services.syncer.settings import SyncerSettings
from services.syncer.workers import ConnectionWorkers, TryLater


class LeaseStore:
    """Just enough of SyncerStore: one connection with a pending round."""

    def __init__(self, grants: int) -> None:
        self.grants = grants  # leases granted before another instance takes over
        self.leases = 0
        self.done_jobs: list[str] = []

    def _state(self, connection_id: str, owner: str) -> dict[str, Any]:
        pending = {} if self.done_jobs else {"round": datetime.now(UTC)}
        return {"_id": connection_id, "active": True, "pending": pending, "lease_owner": owner}

    async def take(
        self, connection_id: str, owner: str, now: datetime, ttl: timedelta, *, ours: bool = False
    ) -> dict[str, Any] | None:
        return (
            self._state(connection_id, owner)
            if await self.lease(connection_id, owner, now, ttl)
            else None
        )

    async def lease(self, connection_id: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        self.leases += 1
        return self.leases <= self.grants

    async def release(self, connection_id: str, owner: str) -> None:
        return None

    async def finish(
        self, connection_id: str, job: str, requested_at: Any, owner: str, *_: Any, **__: Any
    ) -> dict[str, Any] | None:
        self.done_jobs.append(job)
        return None  # it was the only job: released

    async def defer(self, connection_id: str, retry_at: datetime, failures: int) -> None:
        raise AssertionError("a lost lease is not a failure")


def settings() -> SyncerSettings:
    return SyncerSettings.model_construct(lease_seconds=0.3, max_parallel_connections=4)


async def run_with(store: LeaseStore, job_seconds: float) -> list[str]:
    ran: list[str] = []

    async def job(kind: Job, state: dict[str, Any]) -> None:
        ran.append("started")
        await asyncio.sleep(job_seconds)
        ran.append("finished")

    workers = ConnectionWorkers(store, settings(), job)  # type: ignore[arg-type]
    workers.kick("c1")
    await asyncio.sleep(job_seconds + 0.5)
    await workers.stop()
    return ran


async def test_a_long_job_keeps_its_lease_alive() -> None:
    store = LeaseStore(grants=100)
    ran = await run_with(store, job_seconds=0.5)
    assert ran == ["started", "finished"]
    assert store.done_jobs == ["round"]
    assert store.leases >= 3  # the drain's take + renewals every ttl/3 while it ran


async def test_a_job_whose_lease_was_taken_is_cancelled() -> None:
    store = LeaseStore(grants=1)  # the drain's take; the first renewal fails
    ran = await run_with(store, job_seconds=1.0)
    assert ran == ["started"]
    assert store.done_jobs == []


class RetryStore(LeaseStore):
    """A connection with a pending round that remembers its backoff (`defer`)."""

    def __init__(self) -> None:
        super().__init__(grants=100)
        self.retry_at: datetime | None = None

    def _state(self, connection_id: str, owner: str) -> dict[str, Any]:
        return super()._state(connection_id, owner) | {"retry_at": self.retry_at}

    async def defer(self, connection_id: str, retry_at: datetime, failures: int) -> None:
        self.retry_at = retry_at


async def test_a_job_that_must_wait_runs_again_when_due_not_at_the_next_tick() -> None:
    """A transient failure (a 429's Retry-After, a backoff) wakes the worker itself when
    it is due: the timer (15 s by default) is only the safety net after a crash."""
    store = RetryStore()
    attempts: list[float] = []

    async def job(kind: Job, state: dict[str, Any]) -> None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) == 1:
            raise TryLater("throttled", retry_after=0.3)

    workers = ConnectionWorkers(store, settings(), job)  # type: ignore[arg-type]
    workers.kick("c1")
    for _ in range(100):  # up to 5 s, far less than a tick
        if store.done_jobs:
            break
        await asyncio.sleep(0.05)
    await workers.stop()

    assert store.done_jobs == ["round"] and len(attempts) == 2
    assert attempts[1] - attempts[0] >= 0.3  # not before it was due


async def test_a_stopped_worker_set_wakes_no_one() -> None:
    store = RetryStore()
    attempts: list[str] = []

    async def job(kind: Job, state: dict[str, Any]) -> None:
        attempts.append("ran")
        raise TryLater("throttled", retry_after=0.2)

    workers = ConnectionWorkers(store, settings(), job)  # type: ignore[arg-type]
    workers.kick("c1")
    while not attempts:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await workers.stop()
    await asyncio.sleep(0.4)

    assert attempts == ["ran"] and workers.tracked() == 0
