"""`smvue-sync infra …`: the local Kafka + MongoDB for development.

`up` writes only `NAME=value` lines on stdout (progress goes to stderr), so
`eval "$(smvue-sync infra up)"` sets the environment the services read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer

from shared.infra.kafka_jars import JarFetchError, fetch_jars
from shared.infra.kafka_local import KafkaStartError
from shared.infra.local import LocalInfra
from shared.infra.mongo_local import MongoStartError

app = typer.Typer(
    help="The local Kafka 4 (KRaft) + MongoDB-protocol server (SecantusDB), on loopback. "
    "State and data live in $SMVUE_HOME/infra (default .smvue/infra).",
    no_args_is_help=True,
)

T = TypeVar("T")


def _or_exit(action: Callable[[], T]) -> T:
    """Turns a start/fetch failure into its message on stderr and exit status 1."""
    try:
        return action()
    except (KafkaStartError, MongoStartError, JarFetchError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error


@app.command()
def up() -> None:
    """Start Kafka and MongoDB (idempotent) and print their env lines on stdout.

    Usage: eval "$(smvue-sync infra up)". Data is kept across down/up.
    """
    infra = LocalInfra()
    if not infra.status().running:
        typer.echo(f"starting local Kafka and MongoDB in {infra.home} …", err=True)
    endpoints = _or_exit(infra.up)
    for line in endpoints.as_env_lines():
        typer.echo(line)


@app.command()
def down() -> None:
    """Stop Kafka and MongoDB; their data and ports are kept for the next `up`."""
    stopped = LocalInfra().down()
    typer.echo("stopped" if stopped else "nothing was running", err=True)


@app.command()
def status() -> None:
    """Say whether each server is running and, once ports are chosen, where."""
    infra = LocalInfra()
    state = infra.status()
    typer.echo(f"kafka: {'running' if state.kafka_running else 'stopped'}")
    typer.echo(f"mongodb: {'running' if state.mongo_running else 'stopped'}")
    typer.echo(f"home: {infra.home}")
    if state.endpoints is not None:
        for line in state.endpoints.as_env_lines():
            typer.echo(line)


@app.command()
def fetch() -> None:
    """Download the Kafka jars from Maven Central into the cache (once; needs mvn)."""
    libs = _or_exit(fetch_jars)
    typer.echo(f"kafka jars: {libs}", err=True)
