"""The projector near the database's ceiling: N meeting.upserted records over C connections,
the projector as deployed against raw unordered bulk upserts of equivalent documents on the
same server in the same run.

    .venv/bin/python -m benchmarks.projector [--records 8000 --connections 500]

Each record is a meeting of one of the connections' managers with one of three team
members, spread over time, so every pair's history grows through the run (what made the
projector slow down when it recomputed cadence from that history per record). The
projector runs as its own process (`smvue-sync run projector`, benchmarks/harness.py);
once it applied a warm-up record it is stopped (SIGSTOP), the records are published, and
the clock starts when it goes on (SIGCONT): it works a backlog, as after an outage or a
rebuild. Progress is the projector's own count of records applied
(`smvue_records_handled_total`, its /metrics, after each bulk write), sampled every 100 ms,
so each quarter of the records gets its own rate: the rate must not fall as history grows.
It used to be the read model's document count every 50 ms, which SecantusDB answers by
scanning the collection under its storage lock: the observer itself made the projector
slow down as the collection grew (last quarter 0.42 of the first over 20,000 records).
The documents are checked once, at the end (missing, doubled).

The baseline writes the same documents (`merge.meeting_upsert`'s fields) with plain
unordered bulk upserts (`UpdateOne(_id, $set, upsert)`, 1,000 per bulk — a poll's worth —
or an eighth of the records when fewer) into another database of the same server, timed
per quarter too. Figures: records/s of both, per quarter, the ratio, the last quarter
against the first, MongoDB round trips per record (the projector's command listener), the
projector's peak RSS. Exit status 1 when a meeting is missing or doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, UpdateOne

from benchmarks.harness import (
    Figures,
    benchmark_parser,
    benchmark_settings,
    clean_up,
    log_tail,
    ratio,
    report_and_exit,
    services,
    trips_text,
)
from services.projector.adapters.read_model import INDEXES
from services.projector.domain.merge import meeting_upsert
from shared.contracts.connections import connection_id_for
from shared.contracts.meetings import (
    MeetingSnapshot,
    MeetingSource,
    MeetingUpserted,
    Person,
    meeting_id_for,
)
from shared.contracts.topics import MEETINGS
from shared.infra.endpoints import InfraEndpoints
from shared.messaging.admin import create_topics
from shared.messaging.broker import create_broker
from shared.messaging.publisher import KafkaPublisher
from shared.mongo import ensure_indexes
from shared.settings import Settings

BULK = 1000
SAMPLE_SECONDS = 0.1


@dataclass(frozen=True)
class Report(Figures):
    records: int
    connections: int
    projector_records_per_second: float
    projector_quarters: list[float]  # records/s in each quarter of the records
    projector_last_to_first: float
    baseline_records_per_second: float  # raw unordered bulk upserts, same server, same run
    baseline_quarters: list[float]
    ratio_to_baseline: float
    round_trips: dict[str, int]  # the projector's MongoDB commands while it worked
    round_trips_per_record: float
    peak_rss_mib: float
    missing: int
    duplicated: int
    cpus: int
    timed_out: bool


def format_report(r: Report) -> str:
    def quarters(values: list[float]) -> str:
        return " / ".join(f"{v:,.0f}" for v in values)

    trips = trips_text(dict(sorted(r.round_trips.items())))
    return "\n".join(
        [
            f"projector: {r.records:,} meeting.upserted records over {r.connections} "
            f"connections, {r.cpus} CPU(s)",
            f"the projector as deployed: {r.projector_records_per_second:,.0f} records/s "
            f"(quarters {quarters(r.projector_quarters)}; last/first "
            f"{r.projector_last_to_first:.2f})",
            f"raw unordered bulk upserts (baseline): {r.baseline_records_per_second:,.0f} "
            f"records/s (quarters {quarters(r.baseline_quarters)})",
            f"ratio to the baseline: {r.ratio_to_baseline:.2f}",
            f"MongoDB round trips: {trips} = {r.round_trips_per_record:.3f} per record",
            f"peak RSS: projector {r.peak_rss_mib:.0f} MiB",
            f"meetings in the read model: missing {r.missing}, duplicated {r.duplicated}"
            + (" — TIMED OUT" if r.timed_out else ""),
        ]
    )


def make_records(count: int, connections: int, owner: str = "manager") -> list[MeetingUpserted]:
    """`count` meetings in publishing order, round-robin over the connections, each
    connection's meetings spread over its three members and over time (so every pair's
    history grows through the run)."""
    now = datetime.now(UTC).replace(microsecond=0)
    records: list[MeetingUpserted] = []
    for n in range(count):
        index, number = n % connections, n // connections
        user = f"{owner}-{index}"
        cid = connection_id_for(user)
        event = f"ev{number}"
        meeting_id = meeting_id_for(cid, event)
        member = f"member{index}x{number % 3}@contoso.test"
        start = now - timedelta(days=80) + timedelta(hours=29 * number)
        snapshot = MeetingSnapshot(
            meeting_id=meeting_id,
            connection_id=cid,
            manager_id=user,
            member=Person(email=member, display_name=member.split("@")[0]),
            member_id=member.split("@")[0],
            graph_event_id=event,
            event_type="singleInstance",
            subject=f"1:1 {number}",
            start=start,
            end=start + timedelta(minutes=30),
            source=MeetingSource.OUTLOOK,
            version=1,
        )
        records.append(MeetingUpserted.build(key=cid, payload=snapshot))
    return records


def quarter_rates(start: float, marks: Sequence[tuple[float, int]], total: int) -> list[float]:
    """records/s in each quarter of `total`, from `start` and (time, records done) samples."""
    rates, t_prev, d_prev = [], start, 0
    for q in (1, 2, 3, 4):
        goal = math.ceil(total * q / 4)
        hit = next(((t, d) for t, d in marks if d >= goal), None)
        if hit is None:
            rates.append(0.0)
            continue
        elapsed = hit[0] - t_prev
        rates.append(round((hit[1] - d_prev) / elapsed, 1) if elapsed > 0 else math.inf)
        t_prev, d_prev = hit
    return rates


def overall_rate(start: float, marks: Sequence[tuple[float, int]]) -> float:
    if not marks or marks[-1][0] <= start:
        return 0.0
    return round(marks[-1][1] / (marks[-1][0] - start), 1)


async def publish(settings: Settings, records: Sequence[MeetingUpserted]) -> None:
    broker = create_broker(settings, "benchmark")
    await broker.connect()
    try:
        publisher = KafkaPublisher(broker, settings)
        for at in range(0, len(records), 2000):
            await publisher.publish_all(list(records[at : at + 2000]))
    finally:
        await broker.stop()


def baseline_operations(records: Sequence[MeetingUpserted]) -> list[UpdateOne]:
    ops = []
    for record in records:
        write = meeting_upsert(record.payload)
        fields = {**write.set_fields, **write.set_on_insert, "version": write.version}
        ops.append(UpdateOne({"_id": write.doc_id}, {"$set": fields}, upsert=True))
    return ops


async def baseline(
    settings: Settings, records: Sequence[MeetingUpserted]
) -> tuple[float, list[tuple[float, int]]]:
    """The same documents as plain unordered bulk upserts (built beforehand), into a
    database of their own with the same indexes: (start, (time, records written) after
    every bulk)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    db = client[settings.mongodb_database + "_baseline"]
    try:
        await ensure_indexes(db, INDEXES)
        ops = baseline_operations(records)
        marks: list[tuple[float, int]] = []
        began = time.perf_counter()
        size = min(BULK, max(1, len(ops) // 8))  # several bulks in every quarter
        for at in range(0, len(ops), size):
            chunk = ops[at : at + size]
            await db.one_on_ones.bulk_write(chunk, ordered=False)
            marks.append((time.perf_counter(), at + len(chunk)))
        return began, marks
    finally:
        await client.drop_database(db.name)
        await client.close()


async def run_benchmark(
    endpoints: InfraEndpoints, *, records: int, connections: int, give_up_after: float
) -> Report:
    settings = benchmark_settings(endpoints)
    await create_topics(settings)
    backlog = make_records(records, connections)
    warm_up = make_records(1, 1, owner="warm-up")[0]
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    db = mongo[settings.mongodb_database]
    timed_out = False
    try:
        base_start, base_marks = await baseline(settings, backlog)
        with tempfile.TemporaryDirectory(prefix="smvue-bench-") as scratch:
            async with services(("projector",), settings, Path(scratch)) as procs:
                projector = procs["projector"]
                assert projector.process is not None
                # Consuming (assigned, first commit) before the clock starts: one record.
                await publish(settings, [warm_up])
                deadline = time.perf_counter() + 60
                while await projector.records_handled(MEETINGS.name) < 1:
                    if time.perf_counter() > deadline:
                        raise TimeoutError("the projector never applied the warm-up record")
                    await asyncio.sleep(SAMPLE_SECONDS)
                await asyncio.sleep(0.5)  # counts files are written every 0.2 s
                before = projector.commands()
                # The backlog: published while the projector is stopped, worked once it
                # goes on (a few seconds, well inside the group's session timeout).
                projector.process.send_signal(signal.SIGSTOP)
                try:
                    await publish(settings, backlog)
                finally:
                    projector.process.send_signal(signal.SIGCONT)
                began = time.perf_counter()
                marks: list[tuple[float, int]] = []
                deadline = began + give_up_after
                done = 0
                while done < records:
                    if time.perf_counter() > deadline:
                        timed_out = True
                        print(f"--- projector\n{log_tail(projector.log_path)}")
                        break
                    done = await projector.records_handled(MEETINGS.name) - 1
                    marks.append((time.perf_counter(), done))
                    projector.sample_rss()
                    await asyncio.sleep(SAMPLE_SECONDS)
                await asyncio.sleep(1.0)  # its last commits, and the counts file
                after = projector.commands()
                rss = projector.sample_rss()
        stored: Counter[str] = Counter()
        async for doc in db.one_on_ones.find({}, {"version": 1}):
            stored[str(doc["_id"])] += 1
    finally:
        await mongo.close()
        await clean_up(settings)
    trips = {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0) > 0}
    expected = {r.payload.meeting_id for r in backlog}
    missing = len(expected - set(stored))
    duplicated = sum(n - 1 for n in stored.values()) + len(
        set(stored) - expected - {warm_up.payload.meeting_id}
    )
    p_quarters = quarter_rates(began, marks, records)
    b_quarters = quarter_rates(base_start, base_marks, records)
    p_rate, b_rate = overall_rate(began, marks), overall_rate(base_start, base_marks)
    return Report(
        records=records,
        connections=connections,
        projector_records_per_second=p_rate,
        projector_quarters=p_quarters,
        projector_last_to_first=ratio(p_quarters[-1], p_quarters[0]),
        baseline_records_per_second=b_rate,
        baseline_quarters=b_quarters,
        ratio_to_baseline=ratio(p_rate, b_rate),
        round_trips=trips,
        round_trips_per_record=round(sum(trips.values()) / max(1, records), 4),
        peak_rss_mib=rss,
        missing=missing,
        duplicated=duplicated,
        cpus=os.cpu_count() or 1,
        timed_out=timed_out,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = benchmark_parser(
        "benchmarks.projector",
        "The projector as deployed against raw unordered bulk upserts of the "
        "same documents (real Kafka + MongoDB), records/s per quarter.",
    )
    parser.add_argument("--records", type=int, default=8000, help="meeting.upserted records")
    parser.add_argument("--connections", type=int, default=500, help="connections they span")
    parser.add_argument(
        "--timeout", dest="give_up_after", type=float, default=600.0, help="give up after (s)"
    )
    args = parser.parse_args(argv)
    if args.records < 8 or not 1 <= args.connections <= args.records:
        parser.error("need --records ≥ 8 and 1 ≤ --connections ≤ --records")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark, prints the figures; 1 if a meeting is missing or doubled."""
    return report_and_exit(
        parse_args(argv),
        run_benchmark,
        format_report,
        lambda r: bool(r.missing or r.duplicated or r.timed_out),
    )


if __name__ == "__main__":
    raise SystemExit(main())
