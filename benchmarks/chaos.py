"""The chaos suite's long run: the same run as `tests/chaos` (tests/chaos/engine.py), as
long and as wide as asked, with its own Kafka + MongoDB.

    .venv/bin/python -m benchmarks.chaos [--seed S] [--seconds D] [--mailboxes M]
        [--rate R] [--faults kill,graph_storm,...] [--json out.json]

Prints what it injected and the counts (changes, commands, faults, lost, duplicated) with
the seed; the same seed replays the same load and faults. Exit status 1 when anything was
lost, doubled, left without an outcome, dead-lettered unexpectedly or not audited.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.chaos.engine import FAULTS, ChaosConfig, Report, run_chaos


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=600.0, help="load + faults phase")
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--rate", type=float, default=3.0, help="load operations per second")
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    return parser.parse_args(argv)


def failed(report: Report) -> bool:
    return bool(
        report.lost
        or report.duplicated
        or report.extra
        or report.commands_without_outcome
        or report.unexpected_dead_letters
        or report.unaudited_writes
        or report.problems
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    config = ChaosConfig(
        seed=seed,
        mailboxes=args.mailboxes,
        load_seconds=args.seconds,
        ops_per_second=args.rate,
        faults=tuple(f for f in args.faults.split(",") if f),
        quiet_timeout=max(240.0, args.seconds / 4),
    )
    scratch = Path(tempfile.mkdtemp(prefix="smvue-chaos-"))
    report = asyncio.run(run_chaos(config, scratch))
    print(report.render())
    if args.json is not None:
        args.json.write_text(json.dumps(report.summary(), indent=2, default=str) + "\n")
    return 1 if failed(report) else 0


if __name__ == "__main__":
    sys.exit(main())
