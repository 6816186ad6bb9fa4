"""docs/deploy.md stays true where it lists what the code defines."""

from __future__ import annotations

from pathlib import Path

from services.ingress.app import INDEXES as INGRESS_INDEXES
from services.projector.adapters.read_model import INDEXES as PROJECTOR_INDEXES
from services.syncer.adapters.store import INDEXES as SYNCER_INDEXES
from services.writer.adapters.store import INDEXES as WRITER_INDEXES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()


def test_every_collection_with_indexes_is_in_the_mongodb_section() -> None:
    section = DOC.split("## What the read model needs from MongoDB", 1)[1]
    specs = [*INGRESS_INDEXES, *PROJECTOR_INDEXES, *SYNCER_INDEXES, *WRITER_INDEXES]
    assert specs
    for spec in specs:
        assert f"`{spec.collection}`" in section, spec.collection
        fields = ", ".join(name for name, _ in spec.keys)
        assert f"`{fields}`" in section, (spec.collection, fields)
