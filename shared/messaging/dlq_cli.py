"""`smvue-sync dlq list|show|redrive|purge`: thin commands over `shared.messaging.dlq`."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer

from shared import ops_cli
from shared.ops_cli import ExitCode, JsonOption

app = typer.Typer(
    help="Dead letters: see them, put fixed ones back to the group that failed them, purge.",
    no_args_is_help=True,
)

LIST_COLUMNS = ("id", "source_topic", "group", "type", "reason", "error", "at", "status")

TopicOption = Annotated[
    str | None, typer.Option(help="Source topic (registry name, e.g. smvue.calendar.meetings.v1).")
]
GroupOption = Annotated[str | None, typer.Option(help="Consumer group that failed the record.")]
TypeOption = Annotated[
    str | None, typer.Option("--type", help="Message type, e.g. meeting.upserted.")
]
SinceOption = Annotated[str | None, typer.Option(help="Only newer: 30m, 2h, 7d or ISO-8601.")]


def _status(marker: dict[str, object] | None) -> str:
    if marker is None:
        return "dead"
    state = str(marker["state"])
    return f"redriven: {state}" + (f" → {marker['new_id']}" if marker.get("new_id") else "")


@app.command("list")
def list_(
    topic: TopicOption = None,
    group: GroupOption = None,
    message_type: TypeOption = None,
    since: SinceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Counts per (topic, group, reason) and one row per dead letter (errors redacted).

    STATUS says whether it was redriven (applied, or failed again with the new id).
    Exit codes: 0 nothing waiting; 1 dead letters not yet redriven; 2 bad arguments.
    """
    from shared.messaging.dlq import Redriver, read_dead_letters, select

    settings = ops_cli.load_settings()

    async def load() -> tuple[list[dict[str, object]], dict[str, object]]:
        letters = select(
            await read_dead_letters(settings),
            topic=topic,
            group=group,
            message_type=message_type,
            since=ops_cli.parse_since(since),
        )
        markers = await Redriver(settings).marker_states([d.id for d in letters])
        rows = [d.row(_status(markers.get(d.id))) for d in letters]
        counts = Counter((d.source_topic, d.group, d.reason) for d in letters)
        summary = {
            "total": len(rows),
            "waiting": sum(1 for r in rows if r["status"] == "dead"),
            "by": [
                {"source_topic": t, "group": g, "reason": r, "count": n}
                for (t, g, r), n in sorted(counts.items())
            ],
        }
        return rows, summary

    rows, summary = ops_cli.run(load())
    if as_json:
        ops_cli.emit_json({"summary": summary, "dead_letters": rows})
    else:
        by = summary["by"]
        assert isinstance(by, list)
        ops_cli.emit(
            by, ("source_topic", "group", "reason", "count"), as_json=False, title="counts"
        )
        ops_cli.emit(rows, LIST_COLUMNS, as_json=False, title="dead letters")
    if summary["waiting"]:
        raise typer.Exit(int(ExitCode.PROBLEMS))


@app.command("show")
def show(
    letter_id: Annotated[
        str, typer.Argument(metavar="ID", help="<dlq topic>:<partition>:<offset>")
    ],
    as_json: JsonOption = False,
) -> None:
    """One dead letter with its original headers and value (secrets masked).

    Exit codes: 0 shown; 3 no dead letter has that id.
    """
    from shared.messaging.dlq import Redriver, read_dead_letters, select

    settings = ops_cli.load_settings()

    async def load() -> dict[str, object] | None:
        found = select(await read_dead_letters(settings), ids=[letter_id])
        if not found:
            return None
        markers = await Redriver(settings).marker_states([letter_id])
        return found[0].detail(_status(markers.get(letter_id)))

    detail = ops_cli.run(load())
    if detail is None:
        raise ops_cli.fail(f"no dead letter {letter_id}", ExitCode.NOT_FOUND)
    ops_cli.emit_mapping(detail, as_json=as_json, title=letter_id)


@app.command("redrive")
def redrive(
    group: GroupOption = None,
    message_type: TypeOption = None,
    topic: TopicOption = None,
    ids: Annotated[
        list[str] | None, typer.Option("--ids", help="Dead-letter ids (repeat the option).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Say what would be redriven; change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Put dead letters back to the consumer group that failed them, and only to it.

    Fix the cause first (deploy the fix, correct the data). The group's own handler is
    called with the original record; other groups of the same topic see nothing. Redriving
    twice applies once; each redrive is audited; a record that fails again goes back to the
    dead-letter topic with its redrive count (NEW_ID). Give at least one filter.

    Exit codes: 0 every selected record applied (or already was); 1 some failed again,
    need a retry or have no handler; 2 bad arguments; 3 nothing matched.
    """
    from shared.messaging.dlq import RedriveOutcome, Redriver, read_dead_letters, select

    if not (group or message_type or topic or ids):
        raise typer.BadParameter("give --group, --type, --topic or --ids")
    settings = ops_cli.load_settings()

    async def go() -> list[dict[str, object]] | None:
        letters = select(
            await read_dead_letters(settings),
            topic=topic,
            group=group,
            message_type=message_type,
            ids=ids or (),
        )
        if not letters:
            return None
        results = await Redriver(settings).redrive(letters, dry_run=dry_run)
        return [r.row() for r in results]

    rows = ops_cli.run(go())
    if rows is None:
        raise ops_cli.fail("no dead letter matches", ExitCode.NOT_FOUND)
    ops_cli.emit(rows, ("id", "group", "outcome", "detail", "new_id"), as_json=as_json)
    fine = {
        RedriveOutcome.APPLIED.value,
        RedriveOutcome.ALREADY_REDRIVEN.value,
        RedriveOutcome.WOULD_REDRIVE.value,
    }
    if any(r["outcome"] not in fine for r in rows):
        raise typer.Exit(int(ExitCode.PROBLEMS))


@app.command("purge")
def purge(
    older_than: Annotated[str, typer.Option(help="Age: 30m, 2h, 7d, or an ISO-8601 moment.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Say what would go; delete nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete dead letters written before a moment, in every dead-letter topic.

    Kafka deletes by offset: per partition, everything before the first record at or after
    the moment goes. Asks for confirmation unless --yes.

    Exit codes: 0 purged (or nothing to purge); 4 not confirmed.
    """
    from shared.messaging.dlq import purge as purge_records

    settings = ops_cli.load_settings()
    cutoff = ops_cli.parse_since(older_than)
    assert cutoff is not None
    plan = ops_cli.run(purge_records(settings, cutoff, dry_run=True))
    rows = [p.__dict__ for p in plan]
    total = sum(p.deleted for p in plan)
    if dry_run or not plan:
        ops_cli.emit(rows, ("topic", "partition", "before_offset", "deleted"), as_json=as_json)
        return
    if not yes and not typer.confirm(f"delete {total} dead letter(s) older than {cutoff}?"):
        raise ops_cli.fail("not confirmed: nothing deleted", ExitCode.REFUSED)
    done = ops_cli.run(purge_records(settings, cutoff))
    ops_cli.emit(
        [p.__dict__ for p in done],
        ("topic", "partition", "before_offset", "deleted"),
        as_json=as_json,
    )
