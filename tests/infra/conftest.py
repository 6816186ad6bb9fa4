"""Each launcher test gets its own infra home inside a session dir owned by this process,
so a test run killed halfway leaves nothing running for long (the next run reaps it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.infra.selection import session_home


@pytest.fixture
def own_home() -> Iterator[Path]:
    if shutil.which("java") is None:
        pytest.skip("the local Kafka launcher needs Java 17+")
    with session_home() as home:
        yield home
