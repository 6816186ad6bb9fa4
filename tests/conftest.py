"""Session-wide fixtures: the real infrastructure every integration test shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.infra.endpoints import InfraEndpoints
from shared.infra.selection import integration_infrastructure


@pytest.fixture(scope="session")
def infra() -> Iterator[InfraEndpoints]:
    """Real Kafka + MongoDB for the whole run (see shared/infra/selection.py for which)."""
    with integration_infrastructure() as endpoints:
        yield endpoints
