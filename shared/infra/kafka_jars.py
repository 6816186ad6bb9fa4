"""Fetching the Kafka broker's jars from Maven Central with `mvn`, once, into the cache."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from shared.infra.paths import REPO_ROOT, kafka_libs

POM = REPO_ROOT / "deploy" / "local" / "pom.xml"
_MARKER = ".complete"


class JarFetchError(RuntimeError):
    pass


def jars_present(libs: Path | None = None) -> bool:
    libs = libs or kafka_libs()
    return (libs / _MARKER).exists() and any(libs.glob("kafka_2.13-*.jar"))


def fetch_jars(libs: Path | None = None) -> Path:
    """Idempotent: returns the libs dir, downloading only when the marker is missing."""
    libs = libs or kafka_libs()
    if jars_present(libs):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarFetchError("Maven (`mvn`) is needed to fetch the Kafka jars: install it first")
    staging = libs.with_name(libs.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise JarFetchError(f"mvn failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    (staging / _MARKER).write_text("ok\n")
    shutil.rmtree(libs, ignore_errors=True)
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(libs)
    return libs
