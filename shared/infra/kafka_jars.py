"""Fetching the Kafka broker's jars from Maven Central with `mvn`, once, into the cache.

The jars live outside git (see `paths.kafka_libs`). A marker holding the pom's hash is
written after a complete copy, so a later call returns at once, an interrupted fetch is
redone, and an edited pom fetches again. A file lock keeps concurrent fetches (two test
sessions, a CLI and a test) from interleaving.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from shared.infra.paths import REPO_ROOT, kafka_libs

POM = REPO_ROOT / "deploy" / "local" / "pom.xml"
MARKER = ".complete"


class JarFetchError(RuntimeError):
    pass


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def jars_present(libs: Path | None = None) -> bool:
    libs = libs or kafka_libs()
    try:
        return (libs / MARKER).read_text().strip() == _pom_digest()
    except OSError:
        return False


def fetch_jars(libs: Path | None = None) -> Path:
    """Returns the libs dir; runs `mvn dependency:copy-dependencies` only when needed."""
    libs = libs or kafka_libs()
    if jars_present(libs):
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with _locked(libs.parent / ".fetch.lock"):
        if jars_present(libs):  # another process fetched while we waited
            return libs
        staging = Path(tempfile.mkdtemp(prefix=".libs-", dir=libs.parent))
        try:
            _copy_dependencies(staging)
            (staging / MARKER).write_text(_pom_digest() + "\n")
            _swap_in(staging, libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return libs


def _copy_dependencies(into: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarFetchError("Maven (`mvn`) is needed to fetch the Kafka jars: install it first")
    result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={into}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not any(into.glob("kafka_2.13-*.jar")):
        raise JarFetchError(
            f"mvn could not fetch the Kafka jars (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def _swap_in(staging: Path, libs: Path) -> None:
    """Two renames, so a broker starting meanwhile sees the old or the new set, never none."""
    old = libs.with_name(libs.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if libs.exists():
        libs.rename(old)
    staging.rename(libs)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
