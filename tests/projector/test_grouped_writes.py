"""Group commit of the projector's meeting writes (services/projector/adapters/grouped.py):
the batches of several partitions in one bulk write, each caller back only once its
writes are applied, and a failure kept to the batch that caused it. Pure: the bulk write
is a fake of the store's `apply`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.projector.adapters.grouped import GroupedWrites
from services.projector.domain.merge import VersionedWrite


def write(doc_id: str, version: int, **sticky: object) -> VersionedWrite:
    return VersionedWrite(
        doc_id, version, {"subject": f"{doc_id} v{version}"}, sticky=sticky or None
    )


class FakeBulk:
    """The store's `apply`: records each bulk write; fails any holding a poisoned doc."""

    def __init__(self, delay: float = 0.0, poison: str | None = None) -> None:
        self.calls: list[list[VersionedWrite]] = []
        self.delay = delay
        self.poison = poison

    async def __call__(self, writes: Sequence[VersionedWrite]) -> int:
        self.calls.append(list(writes))
        await asyncio.sleep(self.delay)
        if any(w.doc_id == self.poison for w in writes):
            raise ValueError("a write the server refuses")
        return len(writes)


async def test_batches_arriving_within_the_linger_share_one_bulk_write() -> None:
    bulk = FakeBulk()
    grouped = GroupedWrites(bulk, linger=0.05)

    async def partition(n: int) -> None:
        await asyncio.sleep(0.005 * n)  # the partitions' lanes, a few ms apart
        await grouped.apply([write(f"m{n}", 1)])

    await asyncio.gather(*(partition(n) for n in range(6)))

    assert len(bulk.calls) == 1
    assert sorted(w.doc_id for w in bulk.calls[0]) == [f"m{n}" for n in range(6)]


async def test_a_caller_returns_only_once_its_writes_are_applied() -> None:
    bulk = FakeBulk(delay=0.05)
    grouped = GroupedWrites(bulk, linger=0.0)
    task = asyncio.create_task(grouped.apply([write("m1", 1)]))
    await asyncio.sleep(0.02)
    assert bulk.calls and not task.done()  # the bulk write is under way: still waiting
    await task


async def test_writes_arriving_during_a_write_go_together_in_the_next() -> None:
    bulk = FakeBulk(delay=0.05)
    grouped = GroupedWrites(bulk, linger=0.0)
    first = asyncio.create_task(grouped.apply([write("m0", 1)]))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(grouped.apply([write(f"m{n}", 1)])) for n in (1, 2, 3)]
    await asyncio.gather(first, *later)

    assert [sorted(w.doc_id for w in call) for call in bulk.calls] == [
        ["m0"],
        ["m1", "m2", "m3"],
    ]


async def test_the_same_meeting_from_two_partitions_is_written_once_at_its_newest() -> None:
    """The writer's and the syncer's records of one meeting have different keys (so may
    come from different partitions): versions decide, the writer's flag is kept."""
    bulk = FakeBulk()
    grouped = GroupedWrites(bulk, linger=0.02)
    await asyncio.gather(
        grouped.apply([write("m1", 7)]),
        grouped.apply([write("m1", 5, created_in_smvue=True)]),
    )
    assert len(bulk.calls) == 1 and len(bulk.calls[0]) == 1
    (only,) = bulk.calls[0]
    assert only.version == 7 and only.sticky == {"created_in_smvue": True}


async def test_a_failing_group_fails_only_the_batch_that_caused_it() -> None:
    bulk = FakeBulk(poison="bad")
    grouped = GroupedWrites(bulk, linger=0.02)
    results = await asyncio.gather(
        grouped.apply([write("m1", 1)]),
        grouped.apply([write("bad", 1), write("m2", 1)]),
        grouped.apply([write("m3", 1)]),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    # The group, then each batch alone: the good ones applied on their own.
    assert len(bulk.calls) == 4
    alone = [sorted(w.doc_id for w in call) for call in bulk.calls[1:]]
    assert alone == [["m1"], ["bad", "m2"], ["m3"]]


async def test_a_lone_failing_batch_is_not_tried_twice() -> None:
    bulk = FakeBulk(poison="bad")
    grouped = GroupedWrites(bulk, linger=0.0)
    with pytest.raises(ValueError):
        await grouped.apply([write("bad", 1)])
    assert len(bulk.calls) == 1


async def test_a_group_is_bounded_in_size() -> None:
    bulk = FakeBulk()
    grouped = GroupedWrites(bulk, linger=0.01, max_writes=4)
    await asyncio.gather(
        *(grouped.apply([write(f"m{n}a", 1), write(f"m{n}b", 1)]) for n in range(5))
    )
    assert [len(call) for call in bulk.calls] == [4, 4, 2]
