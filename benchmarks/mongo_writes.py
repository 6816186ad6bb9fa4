"""Retryable writes on or off: one-by-one upserts per second on the same server in the same
run (the evidence behind the local default's `retryWrites=false`, ADR 0002).

    .venv/bin/python -m benchmarks.mongo_writes [--writes 4000 --chunk 250 --fill 0]

Two clients of one server, one with `retryWrites=true` (PyMongo's default), one with
`retryWrites=false`, take turns writing `--chunk` single-document upserts (`update_one`
with `upsert=True`, one round trip each, into a database of their own), so both meet the
same load from the rest of the machine. `--fill N` first makes N retryable writes, as a
server that has run for a while has (SecantusDB keeps a registry of retryable writes, 30
minutes / 10,000 entries). Figures: upserts/s of each, per turn and overall, and the
ratio off / on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pymongo import AsyncMongoClient

from benchmarks.harness import infrastructure, ratio
from shared.infra.endpoints import InfraEndpoints


@dataclass(frozen=True)
class Report:
    writes_per_mode: int
    filled: int
    retryable_on_per_second: float
    retryable_off_per_second: float
    ratio_off_to_on: float
    on_turns: list[float]
    off_turns: list[float]
    cpus: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def format_report(r: Report) -> str:
    def turns(values: list[float]) -> str:
        return " / ".join(f"{v:,.0f}" for v in values)

    return "\n".join(
        [
            f"one-by-one upserts, {r.writes_per_mode:,} per mode after {r.filled:,} "
            f"retryable writes, {r.cpus} CPU(s)",
            f"retryWrites=true:  {r.retryable_on_per_second:,.0f}/s (turns {turns(r.on_turns)})",
            f"retryWrites=false: {r.retryable_off_per_second:,.0f}/s (turns {turns(r.off_turns)})",
            f"ratio off / on: {r.ratio_off_to_on:.2f}",
        ]
    )


def with_option(uri: str, option: str) -> str:
    return uri + ("&" if "?" in uri else "/?") + option


async def run_benchmark(endpoints: InfraEndpoints, *, writes: int, chunk: int, fill: int) -> Report:
    name = f"bench_writes_{uuid.uuid4().hex[:8]}"
    on: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        with_option(endpoints.mongodb_uri, "retryWrites=true")
    )
    off: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        with_option(endpoints.mongodb_uri, "retryWrites=false")
    )
    seconds = {"on": 0.0, "off": 0.0}
    turns: dict[str, list[float]] = {"on": [], "off": []}
    try:
        filler = on[name].fill
        for at in range(0, fill, 100):  # one retryable write each, 100 at a time
            await asyncio.gather(
                *(
                    filler.update_one({"_id": n}, {"$set": {"n": n}}, upsert=True)
                    for n in range(at, min(fill, at + 100))
                )
            )
        done = 0
        while done < writes:
            size = min(chunk, writes - done)
            for mode, client in (("on", on), ("off", off)):
                collection = client[name][f"upserts_{mode}"]
                began = time.perf_counter()
                for n in range(done, done + size):
                    await collection.update_one(
                        {"_id": n}, {"$set": {"n": n, "mode": mode}}, upsert=True
                    )
                elapsed = time.perf_counter() - began
                seconds[mode] += elapsed
                turns[mode].append(round(size / elapsed, 1))
            done += size
    finally:
        await on.drop_database(name)
        await on.close()
        await off.close()
    on_rate = round(writes / seconds["on"], 1)
    off_rate = round(writes / seconds["off"], 1)
    return Report(
        writes_per_mode=writes,
        filled=fill,
        retryable_on_per_second=on_rate,
        retryable_off_per_second=off_rate,
        ratio_off_to_on=ratio(off_rate, on_rate),
        on_turns=turns["on"],
        off_turns=turns["off"],
        cpus=os.cpu_count() or 1,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mongo_writes",
        description="One-by-one upserts/s with retryable writes on and off, same server.",
    )
    parser.add_argument("--writes", type=int, default=4000, help="upserts per mode")
    parser.add_argument("--chunk", type=int, default=250, help="upserts per turn")
    parser.add_argument("--fill", type=int, default=0, help="retryable writes made first")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.writes < 1 or args.chunk < 1 or args.fill < 0:
        parser.error("need --writes ≥ 1, --chunk ≥ 1, --fill ≥ 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with infrastructure() as endpoints:
        report = asyncio.run(
            run_benchmark(endpoints, writes=args.writes, chunk=args.chunk, fill=args.fill)
        )
    print(json.dumps(report.to_json(), indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
