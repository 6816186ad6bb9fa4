"""Where local state lives: data and pids under the infra home, jars in a user cache."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_VERSION = "4.1.1"


def smvue_home() -> Path:
    """`$SMVUE_HOME`, else `<repo>/.smvue` (gitignored)."""
    return Path(os.environ.get("SMVUE_HOME") or REPO_ROOT / ".smvue")


def infra_home() -> Path:
    return smvue_home() / "infra"


def cache_dir() -> Path:
    base = os.environ.get("SMVUE_CACHE_DIR") or Path.home() / ".cache" / "smvue-sync"
    return Path(base)


def kafka_libs() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"
