"""How fast the ingress answers Graph's change notifications under concurrent load.

    .venv/bin/python -m benchmarks.ingress_notifications [--requests N --concurrency C]

Graph counts a notification endpoint as slow when it takes longer than 10 s to answer, and
`POST /graph/notifications` answers 202 only once Kafka acknowledged every record (acks=all),
so its answer time is the edge's whole cost: parse, clientState check, publish, ack. The
baseline is `GET /healthz` on the same server, under the same concurrency, in the same run:
the price of HTTP + the event loop on this machine, with no Kafka in it.

The benchmark uses real servers: `KAFKA_BOOTSTRAP_SERVERS` + `MONGODB_URI` when both are
set, otherwise a Kafka + MongoDB of its own (shared/infra `LocalInfra` on free ports, stopped
at the end). It creates the registry's topics under a unique prefix, seeds subscriptions on
the compacted subscriptions topic (as the syncer does: only the clientState's SHA-256), runs
the ingress as a separate process (`benchmarks/harness.py`, shared with the other
benchmarks), and fires N valid notification
batches at concurrency C with httpx. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import secrets
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.harness import (
    benchmark_settings,
    clean_up,
    infrastructure,
    percentile,
    services,
)
from shared.contracts.connections import connection_id_for
from shared.contracts.subscriptions import SubscriptionActivated, SubscriptionInfo
from shared.contracts.topics import NOTIFICATIONS
from shared.infra.endpoints import InfraEndpoints
from shared.messaging.admin import create_topics
from shared.messaging.broker import create_broker
from shared.messaging.publisher import KafkaPublisher
from shared.settings import Settings

GRAPH_SLOW_ENDPOINT_SECONDS = 10.0  # Graph: an endpoint answering slower than this is "slow"


# --- figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseStats:
    """One phase: `requests` answers timed at the client, from send to full answer."""

    name: str
    requests: int
    concurrency: int
    expected_status: int
    unexpected: int  # answers with another status, and transport errors
    statuses: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    wall_seconds: float
    per_second: float


@dataclass(frozen=True)
class Report:
    requests: int
    concurrency: int
    batch_size: int
    subscriptions: int
    warmup: int
    cpus: int
    healthz: PhaseStats
    notifications: PhaseStats
    p99_ratio: float  # notifications p99 / healthz p99
    graph_threshold_seconds: float
    p99_share_of_threshold: float  # notifications p99 / Graph's 10 s
    not_202: int
    records_expected: int  # on the notifications topic: (warmup + requests) x batch size
    records_on_topic: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def phase_stats(
    name: str,
    latencies: Sequence[float],
    statuses: Counter[str],
    *,
    concurrency: int,
    expected_status: int,
    wall_seconds: float,
) -> PhaseStats:
    values = sorted(latencies)
    ms = [v * 1000 for v in values]
    return PhaseStats(
        name=name,
        requests=len(values),
        concurrency=concurrency,
        expected_status=expected_status,
        unexpected=sum(n for status, n in statuses.items() if status != str(expected_status)),
        statuses=dict(sorted(statuses.items())),
        p50_ms=round(percentile(ms, 50), 3),
        p95_ms=round(percentile(ms, 95), 3),
        p99_ms=round(percentile(ms, 99), 3),
        max_ms=round(ms[-1], 3) if ms else math.nan,
        mean_ms=round(sum(ms) / len(ms), 3) if ms else math.nan,
        wall_seconds=round(wall_seconds, 3),
        per_second=round(len(values) / wall_seconds, 1) if wall_seconds > 0 else math.nan,
    )


def format_report(report: Report) -> str:
    head = (
        f"ingress answer times: {report.requests} requests per phase at concurrency "
        f"{report.concurrency}, {report.batch_size} item(s) per notification batch, "
        f"{report.subscriptions} subscription(s), {report.warmup} warm-up request(s), "
        f"{report.cpus} CPU(s)"
    )
    columns = f"{'':28}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}{'mean':>10}{'req/s':>9}"
    lines = [head, "", columns + "  unexpected"]
    for label, phase in (
        ("GET /healthz (baseline)", report.healthz),
        ("POST /graph/notifications", report.notifications),
    ):
        lines.append(
            f"{label:28}"
            + "".join(
                f"{value:>8.1f}ms"
                for value in (phase.p50_ms, phase.p95_ms, phase.p99_ms, phase.max_ms, phase.mean_ms)
            )
            + f"{phase.per_second:>9.1f}  {phase.unexpected} (statuses {phase.statuses})"
        )
    lines += [
        "",
        f"notifications p99 / healthz p99: {report.p99_ratio:.1f}x",
        f"notifications p99 vs Graph's {report.graph_threshold_seconds:.0f} s slow-endpoint "
        f"threshold: {report.notifications.p99_ms / 1000:.3f} s "
        f"= {report.p99_share_of_threshold * 100:.2f} % of it",
        f"answers that were not 202: {report.not_202} of {report.notifications.requests}",
        f"records on the notifications topic: {report.records_on_topic} "
        f"(expected {report.records_expected})",
    ]
    return "\n".join(lines)


# --- the system under test ------------------------------------------------------------------


@dataclass(frozen=True)
class SeededSubscription:
    subscription_id: str
    connection_id: str
    user_id: str
    client_state: str
    expires_at: datetime


async def seed_subscriptions(settings: Settings, count: int) -> list[SeededSubscription]:
    """Subscriptions as the syncer announces them: on the compacted topic, hash only."""
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    seeds = []
    for n in range(count):
        user_id = f"bench-user-{n}-{uuid.uuid4().hex[:6]}"
        seeds.append(
            SeededSubscription(
                subscription_id=str(uuid.uuid4()),
                connection_id=connection_id_for(user_id),
                user_id=user_id,
                client_state=secrets.token_urlsafe(32),
                expires_at=expires,
            )
        )
    broker = create_broker(settings, "benchmark")
    await broker.connect()
    try:
        await KafkaPublisher(broker, settings).publish_all(
            [
                SubscriptionActivated.build(
                    key=seed.connection_id,
                    payload=SubscriptionInfo(
                        subscription_id=seed.subscription_id,
                        connection_id=seed.connection_id,
                        resource="me/events",
                        expires_at=seed.expires_at,
                        client_state_sha256=hashlib.sha256(seed.client_state.encode()).hexdigest(),
                    ),
                )
                for seed in seeds
            ]
        )
    finally:
        await broker.stop()
    return seeds


def notification_body(seed: SeededSubscription, batch_size: int) -> bytes:
    """A change-notification batch exactly as Graph (and the emulator) sends one."""
    items = []
    for _ in range(batch_size):
        event_id = "AAMkAG" + secrets.token_urlsafe(48)
        resource = f"Users/{seed.user_id}/Events/{event_id}"
        items.append(
            {
                "subscriptionId": seed.subscription_id,
                "subscriptionExpirationDateTime": seed.expires_at.isoformat().replace(
                    "+00:00", "Z"
                ),
                "changeType": "updated",
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "@odata.etag": f'W/"{secrets.token_urlsafe(12)}"',
                    "id": event_id,
                },
                "clientState": seed.client_state,
                "tenantId": str(uuid.uuid4()),
            }
        )
    return json.dumps({"value": items}).encode()


Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def fire(
    requests: int, clients: Sequence[httpx.AsyncClient], send: Send
) -> tuple[list[float], Counter[str], float]:
    """`requests` calls, one in flight per client at any time: concurrency = len(clients).
    Returns (latencies in seconds, statuses, wall time)."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    numbers = iter(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        for n in numbers:  # shared: each request number is taken once
            started = time.perf_counter()
            try:
                status = str((await send(client, n)).status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    return latencies, statuses, time.perf_counter() - began


def keep_alive_clients(
    stack: contextlib.AsyncExitStack, base_url: str, count: int
) -> list[httpx.AsyncClient]:
    """One client with one kept-alive connection per in-flight request: a single shared
    pool of many connections costs httpx more CPU per request as the pool grows, and on
    a 2-core machine that would be measured instead of the server."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = []
    for _ in range(count):
        client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0)
        clients.append(client)
        stack.push_async_callback(client.aclose)
    return clients


async def records_on(settings: Settings) -> int:
    """How many records the notifications topic holds (sum of its end offsets)."""
    topic = settings.topic(NOTIFICATIONS)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()  # subscribing fetches the topic's metadata
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def run_benchmark(
    endpoints: InfraEndpoints,
    *,
    requests: int,
    concurrency: int,
    batch_size: int = 1,
    subscriptions: int = 8,
    warmup: int = 50,
) -> Report:
    settings = benchmark_settings(endpoints)
    await create_topics(settings)
    try:
        seeds = await seed_subscriptions(settings, subscriptions)
        bodies = [notification_body(seeds[n % len(seeds)], batch_size) for n in range(requests)]
        warm_bodies = [notification_body(seeds[n % len(seeds)], batch_size) for n in range(warmup)]
        with tempfile.TemporaryDirectory(prefix="smvue-bench-") as scratch:
            base_url = f"http://127.0.0.1:{settings.ingress_port}"
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(services(["ingress"], settings, Path(scratch)))
                clients = keep_alive_clients(stack, base_url, concurrency)
                headers = {"content-type": "application/json"}

                def notify(bodies: list[bytes]) -> Send:
                    def send(client: httpx.AsyncClient, n: int) -> Awaitable[httpx.Response]:
                        return client.post(
                            "/graph/notifications", content=bodies[n], headers=headers
                        )

                    return send

                def health_check(client: httpx.AsyncClient, n: int) -> Awaitable[httpx.Response]:
                    return client.get("/healthz")

                # Warm-up: every connection opened, the producer's metadata for every partition.
                await fire(max(warmup, concurrency), clients, health_check)
                await fire(warmup, clients, notify(warm_bodies))

                health = await fire(requests, clients, health_check)
                notes = await fire(requests, clients, notify(bodies))
        on_topic = await records_on(settings)
    finally:
        with contextlib.suppress(Exception):
            await clean_up(settings)

    healthz = phase_stats(
        "GET /healthz",
        health[0],
        health[1],
        concurrency=concurrency,
        expected_status=200,
        wall_seconds=health[2],
    )
    notifications = phase_stats(
        "POST /graph/notifications",
        notes[0],
        notes[1],
        concurrency=concurrency,
        expected_status=202,
        wall_seconds=notes[2],
    )
    return Report(
        requests=requests,
        concurrency=concurrency,
        batch_size=batch_size,
        subscriptions=subscriptions,
        warmup=warmup,
        cpus=os.cpu_count() or 1,
        healthz=healthz,
        notifications=notifications,
        p99_ratio=round(notifications.p99_ms / healthz.p99_ms, 2) if healthz.p99_ms else math.inf,
        graph_threshold_seconds=GRAPH_SLOW_ENDPOINT_SECONDS,
        p99_share_of_threshold=round(notifications.p99_ms / 1000 / GRAPH_SLOW_ENDPOINT_SECONDS, 6),
        not_202=notifications.unexpected,
        records_expected=(warmup + requests) * batch_size,
        records_on_topic=on_topic,
    )


# --- infrastructure and the command line ----------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingress_notifications",
        description="Answer times of the ingress's POST /graph/notifications under concurrent "
        "load, against GET /healthz on the same server (real Kafka + MongoDB).",
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per phase")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--batch-size", type=int, default=1, help="items per notification batch")
    parser.add_argument("--subscriptions", type=int, default=8, help="seeded subscriptions")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests first")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    for name in ("requests", "concurrency", "batch_size", "subscriptions"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 1 <= args.batch_size <= 1000:
        parser.error("--batch-size must be between 1 and 1000 (Graph's batch limit here)")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark and prints the figures; exit status 1 if any answer was unexpected."""
    args = parse_args(argv)
    # The seeding producer meets NotLeaderForPartition on topics created a moment ago and
    # retries (acks=all); its retry warnings are noise here.
    aiokafka_log = logging.getLogger("aiokafka")
    level = aiokafka_log.level
    aiokafka_log.setLevel(logging.ERROR)
    try:
        with infrastructure() as endpoints:
            report = asyncio.run(
                run_benchmark(
                    endpoints,
                    requests=args.requests,
                    concurrency=args.concurrency,
                    batch_size=args.batch_size,
                    subscriptions=args.subscriptions,
                    warmup=args.warmup,
                )
            )
    finally:
        aiokafka_log.setLevel(level)
    print(json.dumps(report.to_json(), indent=2) if args.json else format_report(report))
    clean = report.not_202 == 0 and report.healthz.unexpected == 0
    return 0 if clean and report.records_on_topic == report.records_expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
