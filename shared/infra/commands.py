"""`smvue-sync infra …`: the local Kafka + MongoDB for development."""

from __future__ import annotations

import typer

from shared.infra.kafka_jars import fetch_jars
from shared.infra.local import LocalInfra

app = typer.Typer(help="The local Kafka (KRaft) + MongoDB (SecantusDB).", no_args_is_help=True)


@app.command()
def up() -> None:
    """Start both (idempotent) and print KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI env lines."""
    typer.echo("starting local Kafka and MongoDB (first start fetches jars)…", err=True)
    endpoints = LocalInfra().up()
    for line in endpoints.as_env_lines():
        typer.echo(line)


@app.command()
def down() -> None:
    """Stop both; their data is kept for the next `up`."""
    stopped = LocalInfra().down()
    typer.echo("stopped" if stopped else "nothing was running", err=True)


@app.command()
def status() -> None:
    """Say whether each server is running, and where."""
    state = LocalInfra().status()
    typer.echo(f"kafka: {'running' if state.kafka_running else 'stopped'}")
    typer.echo(f"mongodb: {'running' if state.mongo_running else 'stopped'}")
    if state.endpoints is not None:
        for line in state.endpoints.as_env_lines():
            typer.echo(line)


@app.command()
def fetch() -> None:
    """Download the Kafka jars from Maven Central into the cache (once)."""
    typer.echo(f"kafka jars: {fetch_jars()}", err=True)
