"""`smvue-sync`: the one command-line entry point of the system."""

from __future__ import annotations

import asyncio
import importlib
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from services.projector.ops import app as read_model_app
from services.syncer.ops import app as connections_app
from shared.audit_cli import app as audit_app
from shared.infra.commands import app as infra_app
from shared.messaging.dlq_cli import app as dlq_app
from shared.messaging.offsets_cli import app as offsets_app

app = typer.Typer(
    name="smvue-sync",
    help="SMVue Outlook Calendar Sync: run the services, the local infrastructure and tools.",
    no_args_is_help=True,
)
keys_app = typer.Typer(help="Token-encryption keys (AES-256-GCM).", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics from the topic registry.", no_args_is_help=True)
schemas_app = typer.Typer(help="Published contracts in schemas/.", no_args_is_help=True)
app.add_typer(infra_app, name="infra")
app.add_typer(topics_app, name="topics")
app.add_typer(keys_app, name="keys")
app.add_typer(schemas_app, name="schemas")
app.add_typer(dlq_app, name="dlq")
app.add_typer(connections_app, name="connections")
app.add_typer(offsets_app, name="offsets")
app.add_typer(read_model_app, name="read-model")
app.add_typer(audit_app, name="audit")

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"


class ServiceName(StrEnum):
    INGRESS = "ingress"
    SYNCER = "syncer"
    WRITER = "writer"
    PROJECTOR = "projector"


@app.command()
def run(service: Annotated[ServiceName, typer.Argument(help="Which service to run.")]) -> None:
    """Run one service in the foreground until SIGTERM / Ctrl-C (graceful shutdown)."""
    from shared.observability.logging import configure_logging
    from shared.service import run_service
    from shared.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format, service=service.value)
    module = importlib.import_module(f"services.{service.value}.app")
    asyncio.run(run_service(module.build_service(settings)))


@app.command()
def dev(
    keep_infra: Annotated[
        bool, typer.Option(help="Leave Kafka and MongoDB running after Ctrl-C.")
    ] = False,
) -> None:
    """Run everything locally: infra, topics, the Graph emulator and the four services."""
    from shared.dev.runner import run_dev

    raise typer.Exit(asyncio.run(run_dev(keep_infra=keep_infra)))


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a fresh random key (base64, 32 bytes) for SMVUE_TOKEN_KEYS."""
    from shared.credentials.cipher import generate_key

    typer.echo(generate_key())


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-seal every stored token under SMVUE_TOKEN_ACTIVE_KEY_ID, with no downtime.

    Add the new key to SMVUE_TOKEN_KEYS and make it active everywhere first (services then
    write with it and still read the old one), run this, and only then drop the old key.
    Exits 1 while any entry is left under another key (unreadable, or busy refreshing).
    """
    from shared.credentials.cipher import TokenCipher
    from shared.credentials.vault import RotationReport, TokenVault
    from shared.mongo import create_mongo_client, database
    from shared.settings import get_settings

    async def rotate() -> RotationReport:
        settings = get_settings()
        client = create_mongo_client(settings)
        try:
            vault = TokenVault(database(client, settings), TokenCipher.from_settings(settings))
            return await vault.rotate()
        finally:
            await client.close()

    report = asyncio.run(rotate())
    typer.echo(f"re-sealed {report.rotated} connection(s) under the active key")
    if report.unreadable:
        typer.echo(
            f"{len(report.unreadable)} connection(s) open under no configured key (left as "
            "they are; keep or restore their old key): " + ", ".join(report.unreadable),
            err=True,
        )
    if report.busy:
        typer.echo(f"{len(report.busy)} connection(s) busy refreshing: run again", err=True)
    if not report.complete:
        raise typer.Exit(1)


@topics_app.command("create")
def topics_create(
    partitions: Annotated[
        int | None, typer.Option(help="Override every topic's partition count.")
    ] = None,
) -> None:
    """Create every registry topic and dead-letter topic that does not exist (idempotent)."""
    from shared.messaging.admin import create_topics
    from shared.settings import get_settings

    created = asyncio.run(create_topics(get_settings(), partitions))
    typer.echo(f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else ""))


class Environment(StrEnum):
    DEV = "dev"
    PRODUCTION = "production"


@topics_app.command("manifest")
def topics_manifest(
    env: Annotated[
        Environment, typer.Option(help="Which environment's durability (replicas, ISR).")
    ] = Environment.PRODUCTION,
    write: Annotated[
        bool, typer.Option("--write", help="Rewrite every checked-in topics.yaml instead.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when a checked-in topics.yaml is stale.")
    ] = False,
) -> None:
    """Print the registry's topics as Strimzi KafkaTopic resources (for a real cluster).

    The checked-in copies live in deploy/kubernetes/overlays/<env>/topics.yaml.
    """
    from shared.messaging import topic_manifest

    if write:
        for path in topic_manifest.write_manifests():
            typer.echo(f"wrote {path}")
        return
    if check:
        stale = topic_manifest.stale_manifests()
        if stale:
            typer.echo(
                "topic manifests are stale; run `smvue-sync topics manifest --write`:", err=True
            )
            for path in stale:
                typer.echo(f"  {path}", err=True)
            raise typer.Exit(1)
        typer.echo("topic manifests are up to date")
        return
    typer.echo(topic_manifest.render(topic_manifest.PROFILES[env.value]), nl=False)


@schemas_app.command("generate")
def schemas_generate() -> None:
    """Regenerate schemas/ (JSON Schema per message + AsyncAPI) from the pydantic contracts."""
    from shared.contracts.schema_export import write_schemas

    written = write_schemas(SCHEMAS_DIR)
    typer.echo(f"wrote {len(written)} file(s) under {SCHEMAS_DIR}")


@schemas_app.command("check")
def schemas_check() -> None:
    """Fail (exit 1) when schemas/ differs from what the contracts generate."""
    from shared.contracts.schema_export import stale_schemas

    stale = stale_schemas(SCHEMAS_DIR)
    if stale:
        typer.echo("schemas/ is stale; run `smvue-sync schemas generate`:", err=True)
        for path in stale:
            typer.echo(f"  {path}", err=True)
        raise typer.Exit(1)
    typer.echo("schemas/ is up to date")


@app.command()
def emulator(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (loopback only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8600,
    http: Annotated[bool, typer.Option("--http", help="Plain HTTP instead of HTTPS.")] = False,
    state: Annotated[
        Path | None, typer.Option(help="JSON file to reload from and save to on exit.")
    ] = None,
    ca_out: Annotated[Path | None, typer.Option(help="Where to write the CA bundle PEM.")] = None,
) -> None:
    """Run the Microsoft Graph + identity platform emulator (prints eval-able env lines)."""
    from emulators.msgraph.server import run as run_emulator

    run_emulator(host, port, http=http, state_file=state, ca_out=ca_out)


def main() -> None:
    app()
