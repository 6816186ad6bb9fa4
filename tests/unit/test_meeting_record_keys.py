"""The meetings topic's record keys (ADR 0009): one key per producer, one partition per
meeting."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from shared.contracts.meetings import syncer_record_key, writer_record_key
from shared.messaging.broker import partition_for


def test_the_writer_and_the_syncer_key_a_meeting_differently() -> None:
    assert syncer_record_key("mtg_1") == "mtg_1"
    assert writer_record_key("mtg_1") != syncer_record_key("mtg_1")


def test_both_producers_records_of_a_meeting_share_its_partition() -> None:
    partitions = list(range(6))
    spread = set()
    for n in range(200):
        meeting = f"mtg_{n:032x}"
        syncer = partition_for(syncer_record_key(meeting).encode(), partitions, partitions)
        writer = partition_for(writer_record_key(meeting).encode(), partitions, partitions)
        assert syncer == writer
        spread.add(syncer)
    assert spread == set(partitions)  # still spread over every partition


def test_every_other_key_is_partitioned_as_kafka_does() -> None:
    default = DefaultPartitioner()
    partitions = list(range(3))
    for key in (b"830c5864-192b-5e4a-b835-1c07b67f2f59", b"ann", b"a#b", b"mtg_1#other"):
        assert partition_for(key, partitions, partitions) == default(key, partitions, partitions)
