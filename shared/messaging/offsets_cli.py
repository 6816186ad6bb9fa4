"""`smvue-sync offsets show|reset`: thin commands over `shared.messaging.offsets`."""

from __future__ import annotations

from typing import Annotated

import typer

from shared import ops_cli
from shared.ops_cli import ExitCode, JsonOption
from shared.settings import Settings

app = typer.Typer(help="Consumer-group offsets: lag per partition; resets.", no_args_is_help=True)

GroupArgument = Annotated[
    str, typer.Argument(metavar="GROUP", help="Consumer group, e.g. smvue.projector.<topic>.")
]
TopicsOption = Annotated[
    list[str] | None,
    typer.Option("--topic", help="Registry topic name (repeat); default: the group's topics."),
]


def _full(settings: Settings, names: list[str] | None) -> list[str]:
    prefix = settings.topic_prefix
    return [n if n.startswith(prefix) else prefix + n for n in names or ()]


@app.command("show")
def show(group: GroupArgument, topic: TopicsOption = None, as_json: JsonOption = False) -> None:
    """The group's state and members, and per partition: committed offset, end offset, lag.

    Exit codes: 0 shown; 3 the group has committed nothing (and no --topic given).
    """
    from shared.messaging.offsets import describe, lag

    settings = ops_cli.load_settings()

    async def load() -> tuple[dict[str, object], list[dict[str, object]]]:
        state = await describe(settings, group)
        rows = [p.row() for p in await lag(settings, group, _full(settings, topic))]
        return state.__dict__, rows

    state, rows = ops_cli.run(load())
    if not rows:
        raise ops_cli.fail(f"group {group} has no committed offsets", ExitCode.NOT_FOUND)
    total = sum(int(str(r["lag"])) for r in rows)
    if as_json:
        ops_cli.emit_json({**state, "total_lag": total, "partitions": rows})
        return
    typer.echo(f"{group}: {state['state']}, {state['members']} member(s), total lag {total}")
    ops_cli.emit(rows, ("topic", "partition", "committed", "end", "lag"), as_json=False)


@app.command("reset")
def reset(
    group: GroupArgument,
    to_earliest: Annotated[
        bool, typer.Option("--to-earliest", help="Re-read from the start.")
    ] = False,
    to_datetime: Annotated[
        str | None, typer.Option(help="Re-read from this moment (ISO-8601, or 2h / 7d ago).")
    ] = None,
    topic: TopicsOption = None,
    dry_run: Annotated[bool, typer.Option(help="Show the new offsets; commit nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Move the group's committed offsets back: the group re-reads (its handlers are idempotent).

    Stop the group's service first: refused while the group has live members. Audited.
    Exit codes: 0 reset; 2 bad arguments; 3 nothing to reset; 4 refused (live members).
    """
    from shared.messaging.offsets import LiveMembers, audit_reset
    from shared.messaging.offsets import reset as reset_offsets

    if to_earliest == (to_datetime is not None):
        raise typer.BadParameter("give exactly one of --to-earliest and --to-datetime")
    settings = ops_cli.load_settings()
    moment = ops_cli.parse_since(to_datetime)
    try:
        target = ops_cli.run(
            reset_offsets(
                settings,
                group,
                to_datetime=moment,
                topics=_full(settings, topic),
                dry_run=dry_run,
            )
        )
    except LiveMembers as exc:
        raise ops_cli.fail(f"refused: {exc}; stop its service first", ExitCode.REFUSED) from exc
    if not target:
        raise ops_cli.fail(f"group {group}: no partitions to reset", ExitCode.NOT_FOUND)
    if not dry_run:
        ops_cli.run(audit_reset(settings, group, target))
    rows = [{"topic": tp.topic, "partition": tp.partition, "offset": o} for tp, o in target.items()]
    ops_cli.emit(rows, ("topic", "partition", "offset"), as_json=as_json)
