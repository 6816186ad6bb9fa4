"""`smvue-sync read-model rebuild|status|drop-old`: the projector's read model for operators.

Thin over `rebuild.py` (the replay through the projector's own handlers, the comparison,
the switch) and `adapters/pointer.py` (which database the projector reads and writes).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import Progress, TaskID

from services.projector import rebuild as rb
from services.projector.adapters.pointer import PointerMoved, ReadModelControl
from shared import ops_cli
from shared.mongo import Document, create_mongo_client
from shared.ops_cli import ExitCode, JsonOption
from shared.settings import Settings

app = typer.Typer(
    help="The 1:1 read model (MongoDB): rebuild it from the topics, verify, switch, drop the old.",
    no_args_is_help=True,
)

PARTITION_COLUMNS = ("topic", "partition", "start", "position", "end", "records", "stalled")
VERIFY_COLUMNS = (
    "collection",
    "live_count",
    "rebuilt_count",
    "live_checksum",
    "rebuilt_checksum",
    "equal",
)


@dataclass
class Outcome:
    report: dict[str, Any] = field(default_factory=dict)
    code: ExitCode = ExitCode.OK
    problems: list[str] = field(default_factory=list)

    def problem(self, message: str, code: ExitCode = ExitCode.PROBLEMS) -> None:
        self.problems.append(message)
        self.code = max(self.code, code)


class _Bars:
    """One progress bar per partition: position / end offset, records/s, ETA."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._tasks: dict[tuple[str, int], TaskID] = {}

    def __call__(self, part: rb.PartitionProgress) -> None:
        key = (part.topic, part.partition)
        if key not in self._tasks:
            self._tasks[key] = self._bar.add_task(
                f"{part.topic}[{part.partition}]", total=part.end, completed=part.start
            )
        self._bar.update(self._tasks[key], total=part.end, completed=part.position)


def _catch_up_row(result: rb.CatchUp) -> dict[str, Any]:
    return {
        "records": result.records,
        "seconds": round(result.seconds, 3),
        "records_per_second": round(result.rate, 1),
        "partitions": [p.row() for p in result.partitions],
    }


async def _settle(
    settings: Settings,
    sources: list[rb.Source],
    client: Any,
    live: str,
    name: str,
    rounds: int,
    hook: rb.ProgressHook | None,
) -> tuple[rb.CatchUp, list[rb.CollectionDiff], bool]:
    """Catch up, let the live projector reach the same offsets, compare; again while they
    differ (records still flowing), at most `rounds` times."""
    total = rb.CatchUp()
    diffs: list[rb.CollectionDiff] = []
    live_reached = True
    for round_ in range(max(1, rounds)):
        result = await rb.catch_up(settings, sources, hook)
        total.merge(result)
        live_reached = await rb.wait_for_live_group(settings, sources, result)
        diffs = await rb.compare(client[live], client[name])
        if all(d.equal for d in diffs):
            break
        if round_ + 1 < rounds:
            await asyncio.sleep(1.0)
    return total, diffs, live_reached


async def run_rebuild(
    settings: Settings,
    *,
    into: str | None,
    do_switch: bool,
    drop_old: bool,
    accept_differences: bool,
    settle_rounds: int,
    switch_timeout: float,
    hook: rb.ProgressHook | None = None,
) -> Outcome:
    out = Outcome()
    client = create_mongo_client(settings)
    try:
        control = ReadModelControl(client[settings.mongodb_database])
        pointer = await control.pointer()
        name = into or rb.default_name(pointer.home, datetime.now(UTC))
        out.report.update(into=name, live=pointer.database)
        try:
            resumed = await rb.check_target(client, control, pointer, name)
        except rb.RebuildRefused as exc:
            out.problem(str(exc), ExitCode.REFUSED)
            return out
        state = await control.rebuild_state(name) or {}
        await control.save_rebuild(
            name,
            {
                "live": pointer.database,
                "started_at": state.get("started_at", datetime.now(UTC)),
                "updated_at": datetime.now(UTC),
            },
        )
        out.report["resumed"] = resumed
        async with rb.projector_into(settings, name) as sources:
            caught, diffs, live_reached = await _settle(
                settings, sources, client, pointer.database, name, settle_rounds, hook
            )
            skipped = _merge_skipped(state.get("skipped") or [], caught.skipped)
            await control.save_rebuild(name, {"skipped": skipped, "updated_at": datetime.now(UTC)})
            equal = all(d.equal for d in diffs)
            out.report.update(
                catch_up=_catch_up_row(caught),
                skipped=skipped,
                verify={
                    "equal": equal,
                    "live_caught_up": live_reached,
                    "collections": [d.row() for d in diffs],
                },
                switched=False,
                dropped=None,
            )
            stalled = [f"{p.topic}[{p.partition}]" for p in caught.partitions if p.stalled]
            if stalled:
                out.problem(f"no progress below the end offset on {', '.join(stalled)}")
            if skipped:  # a warning: the live projector could not apply them either
                out.problems.append(
                    f"{len(skipped)} record(s) could not be applied (the live projector "
                    "dead-letters these too; see `smvue-sync dlq list`)"
                )
            if not equal:
                code = (
                    ExitCode.REFUSED if do_switch and not accept_differences else ExitCode.PROBLEMS
                )
                out.problem(
                    f"{name} differs from the live read model {pointer.database}"
                    + (
                        " (not switched: --accept-differences switches anyway)"
                        if code is ExitCode.REFUSED
                        else ""
                    ),
                    code,
                )
                if code is ExitCode.REFUSED:
                    return out
            if not do_switch:
                return out
            try:
                moved = await rb.switch(
                    control, name, expected=pointer.database, wait_seconds=switch_timeout
                )
            except PointerMoved as exc:
                out.problem(str(exc), ExitCode.REFUSED)
                return out
            final = await rb.catch_up(settings, sources, hook)
            await control.drop_rebuild(name)
            out.report.update(
                switched=True,
                previous=pointer.database,
                instances={"switched": moved.switched, "lagging": moved.lagging},
                final_catch_up=_catch_up_row(final),
            )
            if moved.lagging:
                out.problem(
                    "switched, but these projector instances had not followed within "
                    f"{switch_timeout:.0f}s: {', '.join(moved.lagging)} (the previous read "
                    "model is kept: check them, then `read-model drop-old`)"
                )
                return out
            if drop_old:
                try:
                    out.report["dropped"] = await rb.drop_previous(client, control)
                except rb.StillInUse as exc:
                    out.problem(str(exc), ExitCode.REFUSED)
        return out
    finally:
        await client.close()


def _merge_skipped(known: list[Document], new: list[rb.Skipped]) -> list[Document]:
    seen = {(d["topic"], d["partition"], d["offset"]) for d in known}
    merged = list(known)
    for item in new:
        if (item.topic, item.partition, item.offset) not in seen:
            merged.append(item.row())
    return merged[-1000:]


def _print_report(outcome: Outcome) -> None:
    report = outcome.report
    if "catch_up" in report:
        caught = report["catch_up"]
        ops_cli.emit_table(
            caught["partitions"],
            PARTITION_COLUMNS,
            title=(
                f"replayed {caught['records']} record(s) into {report['into']} in "
                f"{caught['seconds']:.1f}s ({caught['records_per_second']:.0f} records/s)"
            ),
        )
    if report.get("skipped"):
        ops_cli.emit_table(
            report["skipped"],
            ("topic", "partition", "offset", "type", "reason", "error"),
            title="records not applied",
        )
    verify = report.get("verify")
    if verify:
        collections = verify["collections"]
        ops_cli.emit_table(
            collections,
            VERIFY_COLUMNS,
            title=f"{report['into']} against the live read model {report['live']}",
        )
        for diff in collections:
            for kind in ("only_live", "only_rebuilt"):
                if diff[kind]:
                    typer.echo(f"{diff['collection']}: {kind}: {', '.join(diff[kind])}")
            for item in diff["different"]:
                typer.echo(
                    f"{diff['collection']}: {item['id']} differs in {', '.join(item['fields'])}"
                )
    if report.get("switched"):
        typer.echo(
            f"switched: the projector now reads and writes {report['into']}; "
            + (
                f"{report['dropped']} dropped"
                if report.get("dropped")
                else f"the previous read model {report['previous']} is kept until "
                "`smvue-sync read-model drop-old`"
            )
        )


@app.command("rebuild")
def rebuild_command(
    into: Annotated[
        str | None,
        typer.Option(help="Database to rebuild into (default: <home>_rm_<UTC time>); resumes it."),
    ] = None,
    switch: Annotated[
        bool,
        typer.Option("--switch", help="Once equal, make the projector read and write it."),
    ] = False,
    drop_old: Annotated[
        bool, typer.Option("--drop-old", help="With --switch: drop the previous read model.")
    ] = False,
    accept_differences: Annotated[
        bool,
        typer.Option(
            "--accept-differences",
            help="Switch although it differs (a rebuild that fixes a projector bug).",
        ),
    ] = False,
    settle_rounds: Annotated[
        int, typer.Option(help="Comparisons while records still flow, before giving up.")
    ] = 5,
    switch_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every projector instance to follow.")
    ] = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Replay the projector's topics from the beginning into a new database, verify it
    against the live read model, and (with --switch) make the projector use it — while the
    live one keeps serving. Side-effect free: nothing is published, no Graph call, no audit.

    Progress per partition (records done / end offset, records/s, ETA) on stderr. Run it
    again with the same --into to resume. Records that can't be applied are listed (the
    live projector dead-lettered them too). Exit codes: 0 equal (and switched); 1 it
    differs, a partition stalled, or an instance did not follow;
    2 bad arguments; 4 refused (live/home/non-empty target, or it differs and --switch
    was given without --accept-differences).
    """
    if drop_old and not switch:
        raise ops_cli.fail(
            "--drop-old needs --switch (or use `smvue-sync read-model drop-old`)", ExitCode.USAGE
        )
    settings = ops_cli.load_settings()
    with ops_cli.progress(quiet=as_json) as bar:
        outcome = ops_cli.run(
            run_rebuild(
                settings,
                into=into,
                do_switch=switch,
                drop_old=drop_old,
                accept_differences=accept_differences,
                settle_rounds=settle_rounds,
                switch_timeout=switch_timeout,
                hook=None if as_json else _Bars(bar),
            )
        )
    if as_json:
        ops_cli.emit_json({**outcome.report, "problems": outcome.problems})
    else:
        _print_report(outcome)
    for message in outcome.problems:
        ops_cli.warn(message)
    raise typer.Exit(int(outcome.code))


async def status(settings: Settings) -> dict[str, Any]:
    client = create_mongo_client(settings)
    try:
        control = ReadModelControl(client[settings.mongodb_database])
        pointer = await control.pointer()
        counts = {
            name: await client[pointer.database][name].count_documents({})
            for name in rb.READ_MODEL_COLLECTIONS
        }
        return {
            "database": pointer.database,
            "home": pointer.home,
            "previous": pointer.previous,
            "switched_at": pointer.switched_at,
            "counts": counts,
            "instances": [
                {"instance": i["_id"], "database": i["database"], "seen_at": i["seen_at"]}
                for i in await control.live_instances(datetime.now(UTC))
            ],
            "rebuilds": [
                {
                    "name": r.get("name"),
                    "started_at": r.get("started_at"),
                    "updated_at": r.get("updated_at"),
                    "skipped": len(r.get("skipped") or []),
                }
                for r in await control.rebuilds()
            ],
        }
    finally:
        await client.close()


@app.command("status")
def status_command(as_json: JsonOption = False) -> None:
    """Which database the projector reads and writes, the previous one (kept until
    drop-old), live projector instances and the database each uses, rebuilds under way.

    Exit codes: 0."""
    data = ops_cli.run(status(ops_cli.load_settings()))
    ops_cli.emit_mapping(data, as_json=as_json, title="read model")


async def drop_old(settings: Settings) -> str | None:
    client = create_mongo_client(settings)
    try:
        return await rb.drop_previous(client, ReadModelControl(client[settings.mongodb_database]))
    finally:
        await client.close()


@app.command("drop-old")
def drop_old_command(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Drop the previous read model's collections after a switch (only those collections:
    the home database keeps every other service's). Refused while a projector instance
    still uses it.

    Exit codes: 0 dropped; 3 no previous read model; 4 refused (in use, or not confirmed).
    """
    settings = ops_cli.load_settings()
    current = ops_cli.run(status(settings))
    previous = current["previous"]
    if previous is None:
        raise ops_cli.fail("no previous read model to drop", ExitCode.NOT_FOUND)
    if not yes and not typer.confirm(f"drop the read model collections of {previous}?"):
        raise ops_cli.fail("not confirmed: nothing dropped", ExitCode.REFUSED)
    try:
        dropped = ops_cli.run(drop_old(settings))
    except rb.StillInUse as exc:
        raise ops_cli.fail(str(exc), ExitCode.REFUSED) from None
    if as_json:
        ops_cli.emit_json({"dropped": dropped})
    else:
        typer.echo(f"dropped the read model collections of {dropped}")
