"""`smvue-sync`: the one command-line entry point of the system."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="smvue-sync",
    help="SMVue Outlook Calendar Sync: run the services, the local infrastructure and tools.",
    no_args_is_help=True,
)


def main() -> None:
    app()
