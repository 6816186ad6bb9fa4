"""`smvue-sync audit tail`: the audit topic as a table or JSON lines, filtered.

Reads `smvue.calendar.audit.v1` with no consumer group (assigned partitions, nothing
committed): a read-only view. The records carry no secret by construction
(`shared/contracts/audit.py`: ids, outcome, HTTP status, Graph's request id, a redacted
detail), so they are shown as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from shared import ops_cli
from shared.contracts.audit import AuditEntry, AuditRecorded
from shared.contracts.topics import AUDIT
from shared.messaging.admin import topic_partitions
from shared.ops_cli import JsonOption
from shared.settings import Settings

app = typer.Typer(
    help="The audit log (every calendar operation): tail, filter.", no_args_is_help=True
)

COLUMNS = (
    "at",
    "service",
    "operation",
    "outcome",
    "user_id",
    "http_status",
    "graph_request_id",
    "target_ids",
    "detail",
)


def matches(
    entry: AuditEntry, *, user: str | None, operation: str | None, since: datetime | None
) -> bool:
    if user is not None and entry.user_id != user:
        return False
    if operation is not None and not entry.operation.value.startswith(operation):
        return False
    return since is None or entry.at >= since


async def entries(
    settings: Settings,
    *,
    since: datetime | None = None,
    follow: bool = False,
    idle_seconds: float = 1.0,
) -> AsyncIterator[AuditEntry]:
    """Audit entries in offset order per partition; with `follow`, waits for new ones."""
    topic = settings.topic(AUDIT)
    partitions = await topic_partitions(settings, [topic])
    if not partitions:
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        if since is not None:  # skip what is older, by the broker's timestamps
            found = await consumer.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in partitions}
            )
            for tp in partitions:
                at = found.get(tp)
                consumer.seek(tp, at.offset if at is not None else ends[tp])
        else:
            for tp in partitions:
                consumer.seek(tp, starts[tp])
        adapter = AuditRecorded.model_validate_json
        while True:
            batches = await consumer.getmany(timeout_ms=int(idle_seconds * 1000))
            for records in batches.values():
                for record in records:
                    try:
                        yield adapter(record.value or b"").payload
                    except ValidationError:
                        continue
            if follow:
                continue
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(positions[tp] >= ends[tp] for tp in partitions):
                return
    finally:
        await consumer.stop()


def _row(entry: AuditEntry) -> dict[str, Any]:
    row = entry.model_dump(mode="json")
    row["target_ids"] = ",".join(entry.target_ids)
    return row


@app.command("tail")
def tail(
    user: Annotated[str | None, typer.Option("--user", help="Only this SMVue user id.")] = None,
    operation: Annotated[
        str | None,
        typer.Option(help="Only this operation (a prefix: `graph.` is every Graph call)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only entries since: 30m, 2h, 7d or ISO-8601.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new entries (Ctrl-C stops).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print audit entries (who, what, outcome, HTTP status, Graph's request id) from the
    audit topic, oldest first; `--json` prints one JSON object per line.

    Exit codes: 0 done; 2 bad arguments."""
    settings = ops_cli.load_settings()
    moment = ops_cli.parse_since(since)

    async def collect() -> list[dict[str, Any]]:
        rows = []
        async for entry in entries(settings, since=moment, follow=follow):
            if not matches(entry, user=user, operation=operation, since=moment):
                continue
            if follow or as_json:
                typer.echo(ops_cli.to_json(_row(entry)) if as_json else _line(entry))
            else:
                rows.append(_row(entry))
        return rows

    try:
        rows = ops_cli.run(collect())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return
    if not follow and not as_json:
        ops_cli.emit_table(
            rows, COLUMNS, title=f"{len(rows)} audit entr{'y' if len(rows) == 1 else 'ies'}"
        )


def _line(entry: AuditEntry) -> str:
    parts = [entry.at.isoformat(), entry.service, entry.operation.value, entry.outcome.value]
    for label, value in (
        ("user", entry.user_id),
        ("http", entry.http_status),
        ("graph-request-id", entry.graph_request_id),
        ("targets", ",".join(entry.target_ids) or None),
        ("detail", entry.detail),
    ):
        if value is not None:
            parts.append(f"{label}={value}")
    return "  ".join(parts)
