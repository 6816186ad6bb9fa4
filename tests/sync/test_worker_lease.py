"""The worker's lease: renewed while a long job runs; a job whose lease another instance
took is cancelled, so two syncers never work one mailbox at once (no servers needed)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from services.syncer.domain.jobs import Job
from services.syncer.settings import SyncerSettings
from services.syncer.workers import ConnectionWorkers


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
        self, connection_id: str, owner: str, now: datetime, ttl: timedelta
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
