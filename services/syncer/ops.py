"""`smvue-sync connections list|show|resync`: what is happening to a manager's calendar.

Thin over the syncer's own state (`SyncerStore`), the connection registry, the watchdog's
verdict (`domain/watchdog.py`) and the projector's meeting counts. Never a token: the
registry's snapshot carries the granted scopes, not the tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from services.projector.adapters.pointer import current_database
from services.projector.adapters.read_model import MeetingStore
from services.syncer.adapters.store import SyncerStore
from services.syncer.domain.jobs import Job
from services.syncer.domain.watchdog import Limits, stuck_reason
from services.syncer.settings import SyncerSettings
from services.syncer.watchdog import limits_of
from shared import ops_cli
from shared.connections.registry import COLLECTION as REGISTRY
from shared.connections.registry import ConnectionRegistry
from shared.contracts.connections import ConnectionSnapshot, ConnectionState, connection_id_for
from shared.contracts.user_errors import UserErrorCode, user_message
from shared.mongo import Document
from shared.ops_cli import ExitCode, JsonOption
from shared.settings import Settings

app = typer.Typer(
    help="Outlook connections: state, sync stage, last round, subscription, errors; resync.",
    no_args_is_help=True,
)


class StateFilter(StrEnum):
    FAILED = "failed"
    PAUSED = "paused"
    REAUTH = "reauth"  # the same as paused: reauthorization required
    IMPORTING = "importing"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


LIST_COLUMNS = ("user_id", "status", "stage", "stage_since", "last_round_at", "stale", "error")


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _stage(snapshot: ConnectionSnapshot, state: Mapping[str, Any]) -> tuple[str, Any]:
    pending = {k: _aware(v) for k, v in (state.get("pending") or {}).items()}
    if snapshot.state is ConnectionState.DISCONNECTED:
        return "disconnected", None
    if snapshot.state is ConnectionState.REAUTHORIZATION_REQUIRED:
        return "paused", snapshot.last_error.at if snapshot.last_error else None
    if Job.CONNECT.value in pending:
        return "importing", pending[Job.CONNECT.value]
    started, last = _aware(state.get("round_started_at")), _aware(state.get("last_round_at"))
    if started is not None and (last is None or started > last):
        return "round running", started
    if pending:
        return "waiting: " + ",".join(sorted(pending)), min(pending.values())
    return "idle", last


def explain(snapshot: ConnectionSnapshot) -> str:
    """What is going on, in the help page's words (what the person sees on their card)."""
    if snapshot.state is ConnectionState.REAUTHORIZATION_REQUIRED:
        return (
            "Paused: sync stopped because Microsoft no longer accepts the sign-in (expired "
            "or revoked). The person sees "
            f"“{user_message(UserErrorCode.REAUTHORIZATION_REQUIRED)}”. Sync resumes when "
            "they reconnect from the Integrations card; a resync cannot help before that."
        )
    if snapshot.state is ConnectionState.DISCONNECTED:
        return f"{user_message(UserErrorCode.CALENDAR_NOT_CONNECTED)} (disconnected)."
    if snapshot.last_error is not None:
        return (
            f"Last error {snapshot.last_error.code.value} at "
            f"{snapshot.last_error.at.isoformat()}: the person sees "
            f"“{snapshot.last_error.message}”."
        )
    return "Connected and syncing."


def _status(snapshot: ConnectionSnapshot) -> str:
    if snapshot.state is ConnectionState.REAUTHORIZATION_REQUIRED:
        return "paused"
    if snapshot.state is ConnectionState.CONNECTED and snapshot.last_error is not None:
        return "failed"
    return snapshot.state.value


def view(
    snapshot: ConnectionSnapshot,
    state: Document | None,
    subscription: Document | None,
    meetings: dict[str, int] | None,
    now: datetime,
    limits: Limits,
) -> dict[str, Any]:
    """One connection as `connections show` prints it."""
    state = state or {}
    stage, since = _stage(snapshot, state)
    stuck = stuck_reason(state, subscription, now, limits)
    error = snapshot.last_error
    return {
        "user_id": snapshot.user_id,
        "connection_id": snapshot.connection_id,
        "state": snapshot.state.value,
        "status": _status(snapshot),
        "explanation": explain(snapshot),
        "account": snapshot.account.model_dump(mode="json") if snapshot.account else None,
        "granted_scopes": snapshot.granted_scopes,
        "can_write": snapshot.can_write,
        "connected_at": snapshot.connected_at,
        "stage": stage,
        "stage_since": _aware(since),
        "last_sync_at": snapshot.last_sync_at,
        "last_round_at": _aware(state.get("last_round_at")),
        "last_round": state.get("last_round"),
        "last_round_failure": state.get("last_round_failure"),
        "subscription": None
        if subscription is None
        else {
            "id": subscription.get("subscription_id"),
            "expires_at": _aware(subscription.get("expires_at")),
            "expired": _aware(subscription.get("expires_at")) < now,
        },
        "pending_jobs": {k: _aware(v) for k, v in (state.get("pending") or {}).items()},
        "retry_at": _aware(state.get("retry_at")),
        "failures": int(state.get("failures") or 0),
        "error": error.code.value if error else None,
        "last_error": error.model_dump(mode="json") if error else None,
        "stale": stuck[0].value if stuck else None,
        "stale_since": stuck[1] if stuck else None,
        "watchdog_relaunched_at": _aware(state.get("watchdog_relaunched_at")),
        "meetings": meetings,
    }


def _matches(row: Mapping[str, Any], wanted: StateFilter | None) -> bool:
    if wanted is None:
        return True
    if wanted in (StateFilter.PAUSED, StateFilter.REAUTH):
        return bool(row["status"] == "paused")
    if wanted is StateFilter.IMPORTING:
        return bool(row["stage"] == "importing")
    if wanted is StateFilter.FAILED:
        return bool(row["status"] == "failed" or row["state"] == ConnectionState.FAILED.value)
    return bool(row["state"] == wanted.value)


async def views(
    settings: Settings, user_ids: list[str] | None = None, *, with_counts: bool = False
) -> list[dict[str, Any]]:
    from shared.mongo import create_mongo_client, database

    client = create_mongo_client(settings)
    try:
        db = database(client, settings)
        registry, store = ConnectionRegistry(db), SyncerStore(db)
        meetings = MeetingStore(await current_database(client, settings))
        if user_ids is None:
            ids = [str(d["_id"]) async for d in db[REGISTRY].find({}, {"_id": 1})]
        else:
            ids = [connection_id_for(u) for u in user_ids]
        now = datetime.now(UTC)
        limits = limits_of(SyncerSettings())
        out = []
        for cid in ids:
            snapshot = await registry.get(cid)
            if snapshot is None:
                continue
            counts = await meetings.counts(cid) if with_counts else None
            out.append(
                view(
                    snapshot,
                    await store.state(cid),
                    await store.subscription(cid),
                    counts,
                    now,
                    limits,
                )
            )
        return sorted(out, key=lambda v: str(v["user_id"]))
    finally:
        await client.close()


@app.command("list")
def list_(
    state: Annotated[
        StateFilter | None, typer.Option(help="Only connections in this state / stage.")
    ] = None,
    stale: Annotated[
        bool, typer.Option("--stale", help="Only connections the watchdog counts as stuck.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Every connection: status, sync stage and since when, last round, staleness, error.

    Exit codes: 0 listed; 1 some listed connection is stale (stuck); 2 bad arguments.
    """
    rows = [
        v
        for v in ops_cli.run(views(ops_cli.load_settings()))
        if _matches(v, state) and (not stale or v["stale"])
    ]
    ops_cli.emit(rows, LIST_COLUMNS, as_json=as_json, title="connections")
    if any(r["stale"] for r in rows):
        raise typer.Exit(int(ExitCode.PROBLEMS))


@app.command("show")
def show(
    user: Annotated[str, typer.Argument(metavar="USER", help="The SMVue user id (manager).")],
    as_json: JsonOption = False,
) -> None:
    """One connection in full, with what the person sees explained in the help page's words.

    Account, granted scopes (never tokens), sync stage and since when, last delta round,
    subscription id and expiry, pending jobs, last error with its user code, and the
    meetings in the read model. Exit codes: 0 shown; 3 no connection for USER.
    """
    found = ops_cli.run(views(ops_cli.load_settings(), [user], with_counts=True))
    if not found:
        raise ops_cli.fail(f"no connection for user {user}", ExitCode.NOT_FOUND)
    ops_cli.emit_mapping(found[0], as_json=as_json, title=f"connection of {user}")


def _needs_resync(row: Mapping[str, Any]) -> bool:
    return bool(
        row["status"] == "failed"
        or row["state"] == ConnectionState.FAILED.value
        or row["failures"]
        or row["stale"]
    )


async def request_resync(settings: Settings, rows: list[dict[str, Any]]) -> None:
    """A full resync (a fresh import of the window), durably asked of the syncer."""
    from shared.audit import AuditLog
    from shared.contracts.audit import AuditOperation, AuditOutcome
    from shared.messaging.broker import create_broker
    from shared.messaging.publisher import KafkaPublisher
    from shared.mongo import create_mongo_client, database

    client = create_mongo_client(settings)
    broker = create_broker(settings, "operator")
    await broker.connect()
    try:
        store = SyncerStore(database(client, settings))
        audit = AuditLog(KafkaPublisher(broker, settings), "syncer")
        now = datetime.now(UTC)
        for row in rows:
            cid = str(row["connection_id"])
            await store.set_state(cid, retry_at=None, failures=0)
            await store.request(cid, Job.CONNECT.value, now, user_id=row["user_id"])
            await audit.record(
                AuditOperation.SYNC_RESYNC_REQUESTED,
                AuditOutcome.SUCCEEDED,
                connection_id=cid,
                user_id=str(row["user_id"]),
                detail="operator: full resync",
            )
    finally:
        await broker.stop()
        await client.close()


@app.command("resync")
def resync(
    user: Annotated[str | None, typer.Argument(metavar="USER", help="The SMVue user id.")] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Every failed, erroring or stuck connection.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="List what would be resynced.")] = False,
    as_json: JsonOption = False,
) -> None:
    """A full resync of one connection or of every failed one (the syncer runs it soon).

    Paused (reauthorization required) and disconnected connections are refused: only the
    person reconnecting helps. Audited. Exit codes: 0 requested (or would be); 2 bad
    arguments; 3 no connection for USER; 4 refused (paused or disconnected).
    """
    if (user is None) == (not failed):
        raise typer.BadParameter("give USER or --failed (not both)")
    settings = ops_cli.load_settings()
    rows = ops_cli.run(views(settings, [user] if user else None))
    if user is not None and not rows:
        raise ops_cli.fail(f"no connection for user {user}", ExitCode.NOT_FOUND)
    if failed:
        rows = [r for r in rows if _needs_resync(r)]
    refused = [r for r in rows if r["state"] != ConnectionState.CONNECTED.value]
    chosen = [r for r in rows if r not in refused]
    if chosen and not dry_run:
        ops_cli.run(request_resync(settings, chosen))
    out = [
        {"user_id": r["user_id"], "outcome": "would_resync" if dry_run else "requested"}
        for r in chosen
    ] + [
        {"user_id": r["user_id"], "outcome": "refused", "reason": r["explanation"]} for r in refused
    ]
    ops_cli.emit(out, ("user_id", "outcome", "reason"), as_json=as_json)
    if user is not None and refused:
        raise typer.Exit(int(ExitCode.REFUSED))
