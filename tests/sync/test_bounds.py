"""Memory and work that must not only grow (issue 10 item 6): each in-memory map is pruned,
each timer query is bounded, and failed subscription deletions are retried by one
instance only and never past the subscription's own expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.syncer.adapters.store import INDEXES, SyncerStore
from services.syncer.domain.jobs import Job
from services.syncer.handlers import SyncerHandlers
from services.syncer.settings import SyncerSettings
from services.syncer.subscriptions import SubscriptionKeeper
from services.syncer.tokens import SyncerTokens
from services.syncer.workers import ConnectionWorkers
from shared.contracts.audit import AuditOutcome
from shared.graph.errors import NotConnected
from shared.identity.token_source import VaultTokenSource
from shared.infra.endpoints import InfraEndpoints
from shared.mongo import ensure_indexes
from shared.settings import Settings


class Busy:
    """A store whose connections are all leased by another instance."""

    def __init__(self) -> None:
        self.requested: list[str] = []

    async def take(self, *_: Any, **__: Any) -> None:
        return None

    async def request_and_take(self, *_: Any, **__: Any) -> None:
        return None  # leased elsewhere: the handler falls back to request_if_active

    async def request_if_active(self, cid: str, *_: Any, **__: Any) -> bool:
        self.requested.append(cid)
        return True


async def _until_idle(workers: ConnectionWorkers) -> None:
    for _ in range(500):
        if not workers.tracked():
            return
        await asyncio.sleep(0.01)


async def test_worker_tasks_are_forgotten_when_they_end() -> None:
    idle: list[str] = []

    async def job(kind: Job, state: dict[str, Any]) -> None:
        raise AssertionError("never runs: the lease is elsewhere")

    workers = ConnectionWorkers(Busy(), SyncerSettings(), job, on_idle=idle.append)  # type: ignore[arg-type]
    for n in range(300):
        workers.kick(f"c{n}")
    await _until_idle(workers)
    assert workers.tracked() == 0
    assert sorted(idle) == sorted(f"c{n}" for n in range(300))


async def test_causes_go_with_the_connections_task() -> None:
    from shared.contracts.commands import ConnectionCommandRequest, SyncNow

    store = Busy()
    tokens = SyncerTokens(None)  # type: ignore[arg-type]
    handlers = SyncerHandlers(
        store=store,  # type: ignore[arg-type]
        graph=None,  # type: ignore[arg-type]
        rounds=None,  # type: ignore[arg-type]
        subscriptions=None,  # type: ignore[arg-type]
        registry=None,  # type: ignore[arg-type]
        events=None,  # type: ignore[arg-type]
        vault=None,  # type: ignore[arg-type]
        tokens=tokens,
        audit=None,  # type: ignore[arg-type]
        settings=SyncerSettings(),
        publisher=None,  # type: ignore[arg-type]
    )
    for n in range(200):
        request = ConnectionCommandRequest(
            command_id=f"command-{n:04d}", user_id=f"user-{n}", requested_at=datetime.now(UTC)
        )
        await handlers.on_connection_command(SyncNow.build(key=f"k{n}", payload=request))
    assert len(store.requested) == 200
    await _until_idle(handlers.workers)
    assert handlers.tracked() == {"causes": 0, "tasks": 0, "parting": 0, "tokens": 0}


def test_parting_tokens_expire_and_are_forgotten() -> None:
    tokens = SyncerTokens(None, keep_seconds=0.0)  # type: ignore[arg-type]
    for n in range(100):
        tokens.keep_for_cleanup(f"c{n}", "token")
    assert tokens.tracked() == 0  # past their time: pruned
    kept = SyncerTokens(None)  # type: ignore[arg-type]
    kept.keep_for_cleanup("c1", "token")
    assert kept.tracked() == 1
    kept.forget("c1")  # its cleanup ended
    assert kept.tracked() == 0


class NoVault:
    async def load(self, connection_id: str) -> None:
        await asyncio.sleep(0)
        return None


async def test_token_locks_are_dropped_after_use() -> None:
    source = VaultTokenSource(NoVault(), Settings())  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(source.access_token(f"c{n % 50}") for n in range(200)), return_exceptions=True
    )
    assert all(isinstance(r, NotConnected) for r in results)
    assert len(source._locks) == 0
    assert source.apps.built == 0  # no token to fetch: no MSAL application built


class Cleanups:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs
        self.dropped: list[str] = []

    async def cleanups(self, limit: int = 0) -> list[dict[str, Any]]:
        return self.docs[:limit] if limit else list(self.docs)

    async def drop_cleanup(self, subscription_id: str) -> None:
        self.dropped.append(subscription_id)


class Refusing:
    def __init__(self) -> None:
        self.deletes = 0

    async def delete_subscription(self, connection_id: str, subscription_id: str) -> str:
        self.deletes += 1
        return "req-1"


class Audit:
    def __init__(self) -> None:
        self.outcomes: list[AuditOutcome] = []

    async def record(self, operation: Any, outcome: AuditOutcome, **_: Any) -> None:
        self.outcomes.append(outcome)


async def test_retry_cleanups_gives_up_at_the_subscriptions_expiry() -> None:
    now = datetime.now(UTC)
    store = Cleanups(
        [
            {"_id": "sub-old", "connection_id": "c1", "give_up_at": now - timedelta(minutes=1)},
            {"_id": "sub-new", "connection_id": "c2", "give_up_at": now + timedelta(hours=1)},
        ]
    )
    graph, audit = Refusing(), Audit()
    keeper = SubscriptionKeeper(store, graph, None, audit, Settings(), SyncerSettings())  # type: ignore[arg-type]
    ended = await keeper.retry_cleanups(now)
    assert graph.deletes == 1  # only the one that hasn't expired yet is asked of Graph
    assert sorted(store.dropped) == ["sub-new", "sub-old"] and sorted(ended) == ["c1", "c2"]
    assert sorted(audit.outcomes) == sorted([AuditOutcome.FAILED, AuditOutcome.SUCCEEDED])


@pytest.fixture
async def store(infra: InfraEndpoints, mongo_db: str) -> Any:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    db = client[mongo_db]
    await ensure_indexes(db, INDEXES)
    yield SyncerStore(db)
    await client.close()


@pytest.mark.integration
async def test_the_cleanup_chore_runs_on_one_instance_at_a_time(store: SyncerStore) -> None:
    now = datetime.now(UTC)
    ttl = timedelta(seconds=60)
    assert await store.chore_lease("retry_cleanups", "a", now, ttl)
    assert not await store.chore_lease("retry_cleanups", "b", now, ttl)
    assert await store.chore_lease("retry_cleanups", "a", now, ttl)  # renewing its own
    later = now + timedelta(seconds=61)
    assert await store.chore_lease("retry_cleanups", "b", later, ttl)  # a's ran out
    assert not await store.chore_lease("retry_cleanups", "a", later, ttl)


@pytest.mark.integration
async def test_the_timers_queries_are_bounded(store: SyncerStore) -> None:
    now = datetime.now(UTC)
    wanted = now.replace(microsecond=0)
    for n in range(30):
        await store.set_state(
            f"c{n}", active=True, last_round_at=now - timedelta(hours=2), window_start=wanted
        )
    await store.set_state("fresh", active=True, last_round_at=now, window_start=wanted)
    await store.set_state(
        "slid", active=True, last_round_at=now, window_start=wanted - timedelta(days=1)
    )
    stale = await store.due_for_round(now - timedelta(hours=1), wanted, limit=10)
    assert len(stale) == 10
    everything = await store.due_for_round(now - timedelta(hours=1), wanted, limit=100)
    assert "fresh" not in everything and "slid" in everything and len(everything) == 31
    await store.request_many(everything, Job.ROUND.value, now)
    assert len(await store.with_pending(now, limit=7)) == 7
    assert await store.due_for_round(now - timedelta(hours=1), wanted, limit=100) == []
