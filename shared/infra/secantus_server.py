"""The local MongoDB-protocol server: SecantusDB's own `secantusd-py`, with one fix.

    python -m shared.infra.secantus_server <secantusd-py's flags>

SecantusDB 0.7.0b3 (the newest on PyPI) answers a findAndModify by finding the document,
then writing it with the filter `{"_id": <found>, "$and": [<the query>]}` (the query
re-asserted, so a concurrent writer that changed the document makes the write miss). Its
write path picks candidates by index only for filters without a top-level operator, so
that write scans and decodes the whole collection: 3.8 ms per findAndModify at 200
documents, 41 ms at 4,000, against 1.2 ms for an update by `_id` (ADR 0002). Every lease
the syncer takes and every connection card change is a findAndModify.

The fix narrows the candidates of a filter that has a top-level operator beside an `_id`
to the documents that `_id` names. It is exact, not a heuristic: a filter's top-level
fields are a conjunction, so a document it matches has that `_id`; and every caller of
the routing (the write paths, and `find`, which uses it too) still tests each candidate
against the whole filter (`matches`). A filter with a collation
is left as it is (under a collation an `_id` string may match more than itself), as is any
filter the server can already route. Remove this module when SecantusDB routes such
filters itself: `tests/infra/test_secantus_server.py` fails once the fix is no longer needed.
"""

from __future__ import annotations

import sys
from typing import Any

from secantus import cli
from secantus.storage import Storage

_original = Storage._try_index_id_keys


def _candidates_by_id(
    self: Storage, db: str, coll: str, filter: dict[str, Any], *, collation: Any = None
) -> list[bytes] | None:
    found: list[bytes] | None = _original(self, db, coll, filter, collation=collation)
    if found is not None or collation is not None or "_id" not in filter:
        return found
    if not any(isinstance(k, str) and k.startswith("$") for k in filter):
        return found
    by_id: list[bytes] | None = _original(self, db, coll, {"_id": filter["_id"]}, collation=None)
    return by_id


def apply_fix() -> None:
    """Routes a write whose filter names an `_id` beside a top-level operator by that
    `_id` (idempotent)."""
    Storage._try_index_id_keys = _candidates_by_id


def main() -> int:
    apply_fix()
    return int(cli.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
