"""Freshness under load: M connected mailboxes, Outlook changes at R changes/s for D
seconds; how long from the change in Outlook to the read model, against the Graph floor
measured in the same run.

    .venv/bin/python -m benchmarks.freshness [--mailboxes M --rate R --seconds D]

The ingress, syncer and projector run as processes (benchmarks/harness.py) with real
Kafka + MongoDB; the Graph emulator delivers real change notifications. Each change
renames one 1:1 (a PATCH as the person, spread round-robin over the mailboxes, never an
event whose previous change is in flight or not yet seen); an observer polls the read
model every 50 ms. Figures: changes/s achieved, change → read model p50 / p95 / p99 / max,
the Graph floor (PATCH, then a plain client's delta query that returns the change) and the
ratio, Graph requests per change (the syncer's delta pages), MongoDB round trips per change
(every service), the backlog (changes sent but not yet in the read model) over the run —
growing backlog = queues growing — and peak RSS. Exit status 1 when a change never reached
the read model, a PATCH failed (the load generator's own; its clients close idle connections
before the emulator does, benchmarks/harness.py) or a 1:1 was doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.harness import (
    SYNC_SERVICES,
    Cloud,
    Figures,
    Mailbox,
    ReadModel,
    add_mailboxes,
    benchmark_parser,
    clean_up,
    commands,
    commands_since,
    connect,
    emulated_cloud,
    percentile,
    publish_rosters,
    ratio,
    report_and_exit,
    rss_text,
    seed_calendar,
    services,
    sync_env,
    trips_text,
)
from services.syncer.domain.window import window_for
from services.syncer.settings import SyncerSettings
from shared.contracts.meetings import meeting_id_for
from shared.infra.endpoints import InfraEndpoints
from shared.messaging.admin import create_topics


@dataclass(frozen=True)
class Report(Figures):
    mailboxes: int
    rate_wanted: float
    seconds: float
    changes: int
    changes_per_second: float
    p50_seconds: float
    p95_seconds: float
    p99_seconds: float
    max_seconds: float
    graph_floor_p50_seconds: float  # PATCH → a plain client's delta query shows it
    ratio_p50_to_floor: float
    graph_requests_per_change: float  # the syncer's delta requests
    round_trips: dict[str, int]
    round_trips_per_change: float
    round_trips_by_command: dict[str, dict[str, int]]  # per service: "update sync_state": n
    backlog_by_quarter: list[int]  # changes sent but not in the read model, each quarter
    backlog_at_end_of_load: int
    unsent: int  # PATCHes the emulator did not answer with success (the load generator's own)
    missing: int
    duplicated: int
    peak_rss_mib: dict[str, float]
    cpus: int


def format_report(r: Report) -> str:
    return "\n".join(
        [
            f"freshness: {r.mailboxes} mailbox(es), {r.rate_wanted:g} changes/s wanted for "
            f"{r.seconds:g} s, {r.cpus} CPU(s)",
            f"changes: {r.changes} ({r.changes_per_second:.1f}/s achieved)",
            f"Outlook change → read model: p50 {r.p50_seconds:.3f} s, p95 {r.p95_seconds:.3f} s,"
            f" p99 {r.p99_seconds:.3f} s, max {r.max_seconds:.3f} s",
            f"Graph floor (PATCH → delta shows it) p50: {r.graph_floor_p50_seconds:.3f} s; "
            f"ratio p50 / floor: {r.ratio_p50_to_floor:.1f}x",
            f"Graph requests per change: {r.graph_requests_per_change:.2f}",
            f"MongoDB round trips: {trips_text(r.round_trips)} = "
            f"{r.round_trips_per_change:.2f} per change",
            *(
                f"  {name}: {trips_text(counts)}"
                for name, counts in r.round_trips_by_command.items()
            ),
            f"backlog by quarter: {r.backlog_by_quarter}, at the end of the load "
            f"{r.backlog_at_end_of_load}",
            f"peak RSS: {rss_text(r.peak_rss_mib)}",
            f"unsent {r.unsent}, missing {r.missing}, duplicated {r.duplicated}",
        ]
    )


async def graph_floor(cloud: Cloud, mailbox: Mailbox, samples: int) -> float:
    """p50 of: rename a 1:1, then a plain client's delta query (from a deltaLink taken just
    before, the syncer's window) until it lists the event — the least any sync could take."""
    tuning = SyncerSettings()
    window = window_for(datetime.now(UTC), tuning.past_days, tuning.future_days)
    params: dict[str, str] | None = {
        "startDateTime": window.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": window.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    took: list[float] = []
    async with cloud.graph(mailbox) as graph:
        url: str | None = "/v1.0/me/calendarView/delta"
        link = ""
        while url:
            body = (await graph.get(url, params=params)).json()
            params = None
            url = body.get("@odata.nextLink")
            link = body.get("@odata.deltaLink", link)
        for n in range(samples):
            event_id = mailbox.singles[-1 - (n % len(mailbox.singles))]
            began = time.perf_counter()
            answer = await graph.patch(f"/v1.0/me/events/{event_id}", json={"subject": f"f{n}"})
            answer.raise_for_status()
            for _ in range(200):
                seen = (await graph.get(link)).json()
                link = seen.get("@odata.deltaLink", link)
                if any(v.get("id") == event_id for v in seen.get("value", [])):
                    break
                await asyncio.sleep(0.005)
            else:
                raise RuntimeError("the Graph floor never saw its change")
            took.append(time.perf_counter() - began)
    return percentile(sorted(took), 50)


async def run_benchmark(
    endpoints: InfraEndpoints,
    *,
    mailboxes: int,
    events: int,
    one_on_ones: int,
    rate: float,
    seconds: float,
    drain_seconds: float,
) -> Report:
    async with emulated_cloud(endpoints) as cloud:
        settings = cloud.settings
        await create_topics(settings)
        try:
            boxes = add_mailboxes(cloud, mailboxes)
            await asyncio.gather(*(seed_calendar(cloud, m, events, one_on_ones) for m in boxes))
            await publish_rosters(cloud, boxes)
            read_model = ReadModel(settings)
            with tempfile.TemporaryDirectory(prefix="smvue-bench-") as scratch:
                async with services(SYNC_SERVICES, settings, Path(scratch), sync_env()) as procs:
                    await asyncio.gather(*(connect(cloud, m) for m in boxes))
                    deadline = time.perf_counter() + 120
                    for m in boxes:
                        while await read_model.live_count(m.user_id) < m.one_on_ones:
                            if time.perf_counter() > deadline:  # logs: `services`
                                raise TimeoutError("the import did not finish")
                            await asyncio.sleep(0.1)
                    await asyncio.sleep(1.0)  # the import's tail (status, cadence) settles
                    floor = await graph_floor(cloud, boxes[0], 5)
                    await asyncio.sleep(1.0)  # the floor's own changes reach the read model
                    log = cloud.emulator.state.request_log
                    log.clear()
                    before = commands(procs, by_collection=True)
                    result = await _load(cloud, boxes, read_model, rate, seconds, drain_seconds)
                    await asyncio.sleep(0.5)
                    after = commands(procs, by_collection=True)
                    deltas = sum(
                        1 for r in list(log.records) if r.method == "GET" and "delta" in r.path
                    )
                    doubled = sum([await read_model.duplicates(m.user_id) for m in boxes])
                    extra = sum(
                        [
                            max(0, await read_model.live_count(m.user_id) - m.one_on_ones)
                            for m in boxes
                        ]
                    )
                    rss = {name: p.sample_rss() for name, p in procs.items()}
            await read_model.close()
        finally:
            await clean_up(settings)
    latencies, sent, unsent, backlog, backlog_end, missing, wall = result
    values = sorted(latencies)
    by_command = commands_since(before, after)
    trips = {name: sum(counts.values()) for name, counts in by_command.items()}
    p50 = percentile(values, 50)
    return Report(
        mailboxes=mailboxes,
        rate_wanted=rate,
        seconds=seconds,
        changes=sent,
        changes_per_second=round(sent / wall, 2) if wall else math.nan,
        p50_seconds=round(p50, 3),
        p95_seconds=round(percentile(values, 95), 3),
        p99_seconds=round(percentile(values, 99), 3),
        max_seconds=round(values[-1], 3) if values else math.nan,
        graph_floor_p50_seconds=round(floor, 3),
        ratio_p50_to_floor=ratio(p50, floor),
        graph_requests_per_change=round(deltas / max(1, sent), 3),
        round_trips=trips,
        round_trips_per_change=round(sum(trips.values()) / max(1, sent), 2),
        round_trips_by_command=by_command,
        backlog_by_quarter=backlog,
        backlog_at_end_of_load=backlog_end,
        unsent=unsent,
        missing=missing,
        duplicated=doubled + extra,
        peak_rss_mib=rss,
        cpus=os.cpu_count() or 1,
    )


async def _load(
    cloud: Cloud,
    boxes: Sequence[Mailbox],
    read_model: ReadModel,
    rate: float,
    seconds: float,
    drain_seconds: float,
) -> tuple[list[float], int, int, list[int], int, int, float]:
    """Sends the changes at `rate` and observes them; (latencies, sent, not sent — the
    PATCH failed —, backlog per quarter, backlog at the end of the load, never seen, wall
    seconds of the load)."""
    outstanding: dict[str, tuple[str, float]] = {}  # meeting id → (subject, sent at)
    # Meetings whose PATCH has not returned yet: not changed again until it has (two
    # PATCHes of one event in flight may apply in either order, and the observer would
    # then wait for a subject the event no longer has).
    patching: set[str] = set()
    latencies: list[float] = []
    sending = True
    backlog: list[int] = []
    counter = itertools.count()
    targets = itertools.cycle(
        [
            (m, event_id)
            for n in range(max(len(m.singles) for m in boxes))
            for m in boxes
            if n < len(m.singles)
            for event_id in [m.singles[n]]
        ]
    )
    clients = {m.user_id: cloud.graph(m) for m in boxes}
    failures: list[str] = []

    async def observe() -> None:
        while sending or outstanding:
            if outstanding:
                seen = await read_model.subjects(list(outstanding))
                now = time.perf_counter()
                for meeting_id, subject in seen.items():
                    wanted = outstanding.get(meeting_id)
                    if wanted is not None and subject == wanted[0]:
                        latencies.append(now - wanted[1])
                        del outstanding[meeting_id]
            await asyncio.sleep(0.05)

    async def change(mailbox: Mailbox, event_id: str, meeting_id: str, n: int) -> None:
        subject = f"renamed {n}"
        try:
            answer = await clients[mailbox.user_id].patch(
                f"/v1.0/me/events/{event_id}", json={"subject": subject}
            )
            answer.raise_for_status()
        except httpx.HTTPError as exc:  # counted and reported, never silently dropped
            failures.append(f"{type(exc).__name__}: {exc}")
            return
        finally:
            patching.discard(meeting_id)
        outstanding[meeting_id] = (subject, time.perf_counter())

    observer = asyncio.create_task(observe())
    in_flight: set[asyncio.Task[None]] = set()
    began = time.perf_counter()
    sent = 0
    quarter = seconds / 4
    next_quarter = began + quarter
    try:
        while (now := time.perf_counter()) < began + seconds:
            due = int((now - began) * rate) + 1
            while sent < due:
                for _ in range(len(boxes) * 200):
                    mailbox, event_id = next(targets)
                    meeting_id = meeting_id_for(mailbox.connection_id, event_id)
                    if meeting_id not in outstanding and meeting_id not in patching:
                        break
                patching.add(meeting_id)
                task = asyncio.create_task(change(mailbox, event_id, meeting_id, next(counter)))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                sent += 1
            if now >= next_quarter:
                backlog.append(len(outstanding))
                next_quarter += quarter
            await asyncio.sleep(min(0.01, 1 / rate))
        if in_flight:
            await asyncio.gather(*in_flight)
        wall = time.perf_counter() - began
        while len(backlog) < 4:
            backlog.append(len(outstanding))
        backlog_end = len(outstanding)
        give_up = time.perf_counter() + drain_seconds
        while outstanding and time.perf_counter() < give_up:  # noqa: ASYNC110 (polling)
            await asyncio.sleep(0.1)
        missing = len(outstanding)
        sending = False
        outstanding.clear()
        await observer
    finally:
        for client in clients.values():
            await client.aclose()
    for failure in sorted(set(failures)):
        print(f"PATCH failed: {failure}", file=sys.stderr)
    return latencies, sent - len(failures), len(failures), backlog, backlog_end, missing, wall


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = benchmark_parser(
        "benchmarks.freshness",
        "Outlook changes at a rate over M mailboxes: change → read model latency "
        "against the Graph floor (real Kafka + MongoDB, the Graph emulator).",
    )
    parser.add_argument("--mailboxes", type=int, default=50, help="connected mailboxes")
    parser.add_argument("--events", type=int, default=20, help="events per mailbox")
    parser.add_argument("--one-on-ones", type=int, default=14, help="1:1s per mailbox")
    parser.add_argument("--rate", type=float, default=10.0, help="changes per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load")
    parser.add_argument(
        "--drain", dest="drain_seconds", type=float, default=60.0, help="wait for stragglers (s)"
    )
    args = parser.parse_args(argv)
    if args.mailboxes < 1 or args.rate <= 0 or args.seconds <= 0 or args.one_on_ones < 1:
        parser.error("need --mailboxes ≥ 1, --one-on-ones ≥ 1, --rate > 0, --seconds > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark, prints the figures; 1 if a change was lost or a 1:1 doubled."""
    return report_and_exit(
        parse_args(argv),
        run_benchmark,
        format_report,
        lambda r: bool(r.unsent or r.missing or r.duplicated),
    )


if __name__ == "__main__":
    raise SystemExit(main())
