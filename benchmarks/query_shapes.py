"""The cost of a filter's shape on the MongoDB-protocol server: the same lookups with and
without a top-level `$or`, as the collection grows (the evidence behind the syncer's
filters, `services/syncer/adapters/store.py`).

    .venv/bin/python -m benchmarks.query_shapes [--sizes 2000,10000,40000 --repeat 5]

One collection of calendar-item-like documents (200 per connection, a third of them live,
indexed by `connection_id`) is filled up to each size in turn; at each size every shape
is timed `--repeat` times, taking turns, in the same run:

- `id`: one document by `_id` — the baseline;
- `id_or`: the same `_id` beside a two-way `$or` on other fields (a lease's "mine, or free,
  or run out");
- `id_not`: the same `_id` beside the one-field form of that condition
  (`{"$not": {"$gte": t}}`), what the syncer sends instead;
- `connection`: a connection's 200 items by `connection_id` (an indexed query);
- `connection_or`: the same connection's items named by `_id` or live, as an `$or` (what
  an import's lookup was);
- `ids_200`: 200 items by `_id` `$in` (what an incremental round sends, with a few ids).

Figures: milliseconds per query of each shape at each size, and each shape's ratio to the
baseline at that size. SecantusDB scans the whole collection for a top-level `$or`: its
ratio grows with the collection; an index-friendly shape's does not.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient, InsertOne
from pymongo.asynchronous.collection import AsyncCollection

from benchmarks.harness import Figures, benchmark_parser, ratio, report_and_exit
from shared.infra.endpoints import InfraEndpoints

PER_CONNECTION = 200
SHAPES = ("id", "id_or", "id_not", "connection", "connection_or", "ids_200")


@dataclass(frozen=True)
class Report(Figures):
    sizes: list[int]
    repeat: int
    ms_per_query: dict[str, list[float]]  # shape → at each size
    ratio_to_id: dict[str, list[float]]
    cpus: int


def format_report(r: Report) -> str:
    lines = [
        f"one query of each shape, {r.repeat} times per size, {r.cpus} CPU(s); "
        "ms per query (ratio to `id`)",
        "shape".ljust(15) + "".join(f"{size:>18,}" for size in r.sizes),
    ]
    for shape in SHAPES:
        cells = (
            f"{ms:>8.2f} (x{ratio_:>6.1f})"
            for ms, ratio_ in zip(r.ms_per_query[shape], r.ratio_to_id[shape], strict=True)
        )
        lines.append(shape.ljust(15) + "".join(f"{cell:>18}" for cell in cells))
    return "\n".join(lines)


def _item(n: int, now: datetime) -> dict[str, Any]:
    cid = f"conn-{n // PER_CONNECTION}"
    return {
        "_id": f"{cid}:evt-{n % PER_CONNECTION}",
        "connection_id": cid,
        "event_id": f"evt-{n % PER_CONNECTION}",
        "kind": "one_on_one",
        "published": {"meeting_id": f"m-{n}", "version": 1, "live": n % 3 == 0},
        "lease_until": now - timedelta(seconds=n % 7) if n % 2 else None,
        "event": {"subject": "1:1", "web_link": "https://outlook.example/" + "x" * 200},
    }


def _shapes(
    items: AsyncCollection[dict[str, Any]], size: int, now: datetime
) -> dict[str, Callable[[], Awaitable[int]]]:
    cid = f"conn-{(size // PER_CONNECTION) // 2}"  # a connection in the middle
    one = f"{cid}:evt-7"
    named = [f"{cid}:evt-{n}" for n in range(PER_CONNECTION)]

    async def count(query: dict[str, Any]) -> int:
        return len(await items.find(query).to_list())

    free = [{"lease_until": None}, {"lease_until": {"$lt": now}}]
    return {
        "id": lambda: count({"_id": one}),
        "id_or": lambda: count({"_id": one, "$or": free}),
        "id_not": lambda: count({"_id": one, "lease_until": {"$not": {"$gte": now}}}),
        "connection": lambda: count({"connection_id": cid}),
        "connection_or": lambda: count(
            {"connection_id": cid, "$or": [{"_id": {"$in": named}}, {"published.live": True}]}
        ),
        "ids_200": lambda: count({"_id": {"$in": named}}),
    }


async def run_benchmark(endpoints: InfraEndpoints, *, sizes: list[int], repeat: int) -> Report:
    name = f"bench_shapes_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(endpoints.mongodb_uri)
    items = client[name].items
    now = datetime.now(UTC)
    spent: dict[str, list[float]] = {shape: [] for shape in SHAPES}
    try:
        await items.create_index([("connection_id", 1)])
        filled = 0
        for size in sizes:
            for at in range(filled, size, 1000):
                batch = range(at, min(size, at + 1000))
                await items.bulk_write([InsertOne(_item(n, now)) for n in batch], ordered=False)
            filled = max(filled, size)
            shapes = _shapes(items, size, now)
            seconds = dict.fromkeys(SHAPES, 0.0)
            found: dict[str, int] = {}
            for _ in range(repeat):  # taking turns: every shape meets the same machine
                for shape, query in shapes.items():
                    began = time.perf_counter()
                    found[shape] = await query()
                    seconds[shape] += time.perf_counter() - began
            expected = {"id": 1, "connection": PER_CONNECTION, "ids_200": PER_CONNECTION}
            for shape, n in expected.items():
                if found[shape] != n:
                    raise RuntimeError(f"{shape} found {found[shape]}, expected {n}")
            if found["id_or"] != found["id_not"]:
                raise RuntimeError("the $or and its one-field form disagree")
            for shape in SHAPES:
                spent[shape].append(round(seconds[shape] / repeat * 1000, 2))
    finally:
        await client.drop_database(name)
        await client.close()
    return Report(
        sizes=sizes,
        repeat=repeat,
        ms_per_query=spent,
        ratio_to_id={
            shape: [ratio(ms, base) for ms, base in zip(spent[shape], spent["id"], strict=True)]
            for shape in SHAPES
        },
        cpus=os.cpu_count() or 1,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = benchmark_parser(
        "benchmarks.query_shapes",
        "Milliseconds per lookup with and without a top-level $or, same server.",
    )
    parser.add_argument(
        "--sizes", default="2000,10000,40000", help="collection sizes, comma-separated"
    )
    parser.add_argument("--repeat", type=int, default=5, help="queries per shape per size")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(size) for size in args.sizes.split(",")})
    except ValueError:
        parser.error("--sizes: whole numbers, comma-separated")
    if args.sizes[0] < 2 * PER_CONNECTION or args.repeat < 1:
        parser.error(f"need every size ≥ {2 * PER_CONNECTION} and --repeat ≥ 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark and prints the figures (a wrong answer raises: exit status 1)."""
    return report_and_exit(parse_args(argv), run_benchmark, format_report, lambda r: False)


if __name__ == "__main__":
    raise SystemExit(main())
