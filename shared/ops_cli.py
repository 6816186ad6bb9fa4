"""What every operator subcommand shares: exit codes, table / JSON output, progress.

Operator commands (`dlq`, `offsets`, `audit`, `connections`, `read-model`) are thin typer
commands living beside the code they drive; they print through these helpers so that every
one of them has the same `--json` behaviour (one JSON document, or JSON lines for a stream)
and the same exit codes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from shared.settings import Settings

T = TypeVar("T")


class ExitCode(IntEnum):
    """The exit statuses of every operator command (also listed in each `--help`)."""

    OK = 0
    PROBLEMS = 1  # the command ran; something it reports needs attention
    USAGE = 2  # bad arguments (typer's own code)
    NOT_FOUND = 3  # the record / group / connection asked for does not exist
    REFUSED = 4  # refused for safety (live members, no confirmation)


EXIT_CODES_HELP = (
    "Exit codes: 0 done; 1 done, but something needs attention (listed on stderr); "
    "2 bad arguments; 3 not found; 4 refused for safety."
)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Machine-readable output (JSON) instead of a table.")
]


def run(coroutine: Awaitable[T]) -> T:
    """Runs one command's coroutine (operator commands are async over Kafka and Mongo)."""

    async def main() -> T:
        return await coroutine

    return asyncio.run(main())


def load_settings() -> Settings:
    """The environment's settings, read afresh (each command invocation reads its env).

    Also sends log lines to stderr, warnings and worse only: a command's stdout is its
    output (a table, or JSON a script parses), never a log line of the code it drives."""
    from shared.observability.logging import configure_logging

    settings = Settings()
    configure_logging("WARNING", settings.log_format, service="operator")
    return settings


def console(err: bool = False) -> Console:
    return Console(file=sys.stderr if err else sys.stdout, soft_wrap=True)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, default=str)


def emit_json(value: Any) -> None:
    typer.echo(to_json(value))


def emit_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, title: str | None = None
) -> None:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(_plain(row.get(c))) for c in columns))
    console().print(table)


def emit(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool,
    title: str | None = None,
) -> None:
    """A list of rows as a rich table, or as one JSON array with `--json`."""
    if as_json:
        emit_json(list(rows))
    else:
        emit_table(rows, columns, title=title)


def emit_mapping(data: Mapping[str, Any], *, as_json: bool, title: str | None = None) -> None:
    """One object: a two-column table (field, value) or a JSON object."""
    if as_json:
        emit_json(data)
        return
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in data.items():
        shown = to_json(value) if isinstance(value, Mapping | list) else _plain(value)
        table.add_row(key, "" if shown is None else str(shown))
    console().print(table)


def warn(message: str) -> None:
    typer.echo(message, err=True)


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Prints `message` on stderr and returns the Exit to raise."""
    warn(message)
    return typer.Exit(int(code))


class RateColumn(ProgressColumn):
    """Records per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- rec/s" if speed is None else f"{speed:,.0f} rec/s")


def progress(*, quiet: bool = False) -> Progress:
    """A progress display with done/total, rate (records/s) and ETA (on stderr)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(err=True),
        disable=quiet,
        transient=False,
    )


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """`30m`, `2h`, `7d` (ago) or an ISO-8601 moment (UTC when it carries no zone)."""
    if not text:
        return None
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        return (now or datetime.now(UTC)) - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: expected 30m, 2h, 7d or an ISO-8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def first(items: Iterable[T], test: Callable[[T], bool]) -> T | None:
    return next((item for item in items if test(item)), None)
