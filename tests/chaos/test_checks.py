"""The chaos checks themselves (unit): a check that miscounts hides or invents findings."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.messaging.dlq import DeadLetter
from tests.chaos.engine import sort_dead_letters


def letter(offset: int, key: bytes, source: str = "t.notifications") -> DeadLetter:
    return DeadLetter(
        id=f"{source}.dlq:0:{offset}",
        dlq_topic=f"{source}.dlq",
        partition=0,
        offset=offset,
        timestamp=datetime.now(UTC),
        source_topic=source,
        source_partition=0,
        source_offset=offset,
        group="g",
        message_type=None,
        reason="unparseable",
        error="bad json",
        failed_at=None,
        redrive_count=0,
        key=key,
        value=b"{not json",
        headers={},
    )


def test_a_poison_record_dead_lettered_twice_counts_once() -> None:
    letters = [
        letter(0, b"chaos-poison-1"),
        letter(1, b"chaos-poison-1"),  # redelivered after a kill before its commit
        letter(2, b"chaos-poison-2"),
        letter(3, b"chaos-poison-2", source="t.meeting-commands"),  # another record
        letter(4, b"conn-1"),  # not poison: a finding
    ]
    unexpected, poisoned = sort_dead_letters(letters)
    assert poisoned == 3
    assert unexpected == ["t.notifications: unparseable bad json"]
