"""The local MongoDB-protocol server: SecantusDB's own `secantusd-py`, with two fixes.

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

The second: before answering any command, SecantusDB reads the database's profiler
settings from a storage table under the storage engine's one global lock
(`Storage.get_profile`) — 6 % of the server's samples at 50 changes/s, and a lock every
other command waits on. The settings change only through `Storage.set_profile` (the
`profile` command), so they are cached per database and the cache is dropped by every
`set_profile` (both under that lock: a read never races a change).
"""

from __future__ import annotations

import sys
from typing import Any

from secantus import cli
from secantus.storage import Storage

_original = Storage._try_index_id_keys
_get_profile = Storage.get_profile
_set_profile = Storage.set_profile


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


def _cached_profile(self: Storage, db: str) -> dict[str, Any]:
    cache: dict[str, dict[str, Any]] = self.__dict__.setdefault("_smvue_profiles", {})
    found = cache.get(db)
    if found is None:
        with self._lock:  # as `set_profile` holds it: a fill never races a change
            found = cache[db] = _get_profile(self, db)
    return dict(found)  # callers may not change what is cached


def _set_profile_and_forget(self: Storage, db: str, **settings: Any) -> None:
    with self._lock:
        try:
            _set_profile(self, db, **settings)
        finally:
            self.__dict__.setdefault("_smvue_profiles", {}).clear()


def apply_fix() -> None:
    """Routes a write whose filter names an `_id` beside a top-level operator by that
    `_id`, and caches the profiler settings until they change (idempotent)."""
    Storage._try_index_id_keys = _candidates_by_id
    Storage.get_profile = _cached_profile
    Storage.set_profile = _set_profile_and_forget


def main() -> int:
    apply_fix()
    return int(cli.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
