"""The chaos checks themselves (unit): a check that miscounts hides or invents findings."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from shared.messaging.dlq import DeadLetter
from tests.chaos.engine import Load, Tally, aimed_at, cancelled_schedules, sort_dead_letters


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


def _load_with(commands: dict[str, str], targets: dict[str, str]) -> Load:
    load = Load(random.Random(1), None, None, [], Tally())  # type: ignore[arg-type]
    load.commands.update(commands)
    load.targets.update(targets)
    return load


def test_a_schedule_counts_as_cancelled_only_by_a_cancel_that_succeeded() -> None:
    load = _load_with(
        {"s1": "schedule", "s2": "schedule", "c1": "cancel", "c2": "cancel"},
        {"c1": "m1", "c2": "m2"},
    )
    statuses: dict[str, dict[str, Any]] = {
        "s1": {"state": "succeeded", "result": {"meeting_id": "m1"}},
        "s2": {"state": "succeeded", "result": {"meeting_id": "m2"}},
        "c1": {"state": "succeeded", "result": {"meeting_id": "m1"}},
        "c2": {"state": "failed", "failure": {"code": "event_not_found", "detail": "gone"}},
    }
    assert cancelled_schedules(load, statuses) == {"s1"}
    # A miscount names what was aimed at the meeting, with its outcome and reason.
    said = aimed_at("s2", load, statuses)
    assert "cancel c2 failed event_not_found: gone" in said
    assert aimed_at("s1", load, statuses).endswith("cancel c1 succeeded")
