"""The local default runs without retryable writes (ADR 0002: SecantusDB's registry of
retryable writes slows every write once full); an external MongoDB keeps its own URI; the
`infra up` lines with the `&` between options survive `eval`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from shared.infra.endpoints import InfraEndpoints
from shared.infra.mongo_local import LocalMongo
from shared.settings import Settings


def options(uri: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(uri).query)


def test_the_local_server_and_the_settings_default_turn_retryable_writes_off(
    tmp_path: Path,
) -> None:
    local = LocalMongo(tmp_path, 27999).uri
    assert options(local) == {"directConnection": ["true"], "retryWrites": ["false"]}
    default = Settings.model_fields["mongodb_uri"].default
    assert options(default)["retryWrites"] == ["false"]


def test_an_external_uri_is_taken_as_given() -> None:
    external = "mongodb://db.example:27017/?replicaSet=rs0"
    assert Settings(mongodb_uri=external).mongodb_uri == external


def test_env_lines_with_several_uri_options_survive_eval() -> None:
    uri = "mongodb://127.0.0.1:2/?directConnection=true&retryWrites=false"
    lines = "\n".join(InfraEndpoints("127.0.0.1:1", uri).as_env_lines())
    shown = subprocess.run(
        ["bash", "-c", 'eval "$LINES"; printf %s "$MONGODB_URI"'],
        env={"LINES": lines, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == uri
