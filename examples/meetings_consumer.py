"""A platform team's own view of SMVue's 1:1s, built from `smvue.calendar.meetings.v1`.

It depends only on what a consumer has: aiokafka and the published JSON records
(schemas/messages/); none of this project's code. The rules (docs/consumers.md):

- a meeting is identified by the payload's `meeting_id`, never by the record key (each
  producer has its own key per meeting: the syncer `<meeting id>`, the writer
  `<meeting id>#smvue`, both on the same partition);
- a record whose `version` is not newer than the one held is stale or a duplicate: drop it;
- `meeting.removed` leaves a tombstone (its version stops an older upsert from bringing the
  meeting back); a cancelled meeting is an upsert with `is_cancelled: true`, still listed;
- `created_in_smvue` is sticky: once any record of a meeting says true, it stays true.

    python -m examples.meetings_consumer --bootstrap 127.0.0.1:9092 \
        --topic smvue.calendar.meetings.v1

reads the topic from the beginning to its end and prints the view as JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Meeting:
    meeting_id: str
    version: int
    removed: bool
    created_in_smvue: bool
    snapshot: dict[str, Any] = field(default_factory=dict)


@dataclass
class MeetingsView:
    """Per meeting id: the newest record's fields, the sticky flag, tombstones kept."""

    meetings: dict[str, Meeting] = field(default_factory=dict)
    dropped: int = 0  # stale or duplicate records

    def apply(self, record: dict[str, Any]) -> None:
        kind, payload = record.get("type"), record["payload"]
        if kind not in ("meeting.upserted", "meeting.removed"):
            return  # a type this consumer doesn't know yet: skip, don't fail
        meeting_id, version = str(payload["meeting_id"]), int(payload["version"])
        held = self.meetings.get(meeting_id)
        sticky = bool(payload.get("created_in_smvue")) or bool(held and held.created_in_smvue)
        if held is not None and version <= held.version:
            held.created_in_smvue = sticky
            self.dropped += 1
            return
        removed = kind == "meeting.removed"
        self.meetings[meeting_id] = Meeting(
            meeting_id, version, removed, sticky, {} if removed else dict(payload)
        )

    def apply_all(self, records: Iterable[dict[str, Any]]) -> MeetingsView:
        for record in records:
            self.apply(record)
        return self

    def live(self) -> list[Meeting]:
        """What to show: every meeting not removed (cancelled ones included, flagged)."""
        return sorted(
            (m for m in self.meetings.values() if not m.removed),
            key=lambda m: str(m.snapshot.get("start")),
        )


async def read_view(bootstrap: str, topic: str) -> MeetingsView:
    """The topic from the beginning to its current end (a replay builds the same view)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0:
        raise SystemExit(f"{topic}: no such topic (error {described['error_code']})")
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    # No group: this reader replays the whole topic every time. A long-running consumer
    # would use a group_id and commit after applying each batch.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        view = MeetingsView()
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                view.apply_all(json.loads(r.value) for r in records if r.value)
        return view
    finally:
        await consumer.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--topic", default="smvue.calendar.meetings.v1")
    args = parser.parse_args(argv)
    view = asyncio.run(read_view(args.bootstrap, args.topic))
    for meeting in view.live():
        print(json.dumps({"created_in_smvue": meeting.created_in_smvue, **meeting.snapshot}))


if __name__ == "__main__":
    main()
