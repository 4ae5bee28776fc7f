"""What a real broker stored was written by an idempotent producer: the README's promise, seen in Kafka.

Consumers never see a record batch's producer id, so the batches are fetched with a raw Fetch
request and read as Kafka stores them. An idempotent producer stamps every batch with the
producer id and epoch the broker gave it and numbers its records from 0 without a gap; that is
what lets the broker drop a batch retried after a lost acknowledgement. A producer that is not
idempotent writes producer id -1 and sequence -1, and this test fails.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from gateway.adapters.kafka import KafkaSink, ensure_topics
from gateway.records.topics import ProducerRecord
from gateway.settings import KafkaSettings

pytestmark = [pytest.mark.kafka]

RECORDS = 500
NO_PRODUCER_ID = -1  # what a producer that is not idempotent writes into every batch


async def fetch_batches(bootstrap: str, topic: str) -> list[tuple[int, int, int, int]]:
    """``(producer_id, producer_epoch, base_sequence, records)`` of every batch in partition 0."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        await client.force_metadata_update()
        leader = client.cluster.leader_for_partition(TopicPartition(topic, 0))
        batches: list[tuple[int, int, int, int]] = []
        offset = 0
        while sum(b[3] for b in batches) < RECORDS:
            request = FetchRequest(500, 1, 4 << 20, 0, [(topic, [(0, offset, 4 << 20)])])
            response = await client.send(leader, request)
            [(_, [(_, error_code, _, *_, raw)])] = response.topics
            assert error_code == 0
            records = MemoryRecords(raw)
            while (batch := records.next_batch()) is not None:
                count = sum(1 for _ in batch)
                batches.append(
                    (batch.producer_id, batch.producer_epoch, batch.base_sequence, count)
                )
                offset = batch.next_offset
        return batches
    finally:
        await client.close()


async def test_every_stored_batch_carries_the_idempotent_producer_id(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix, partitions=1, linger_ms=20
    )
    topic = f"{topic_prefix}.spot.trade"
    await ensure_topics(settings, [topic])
    sink = KafkaSink(settings)
    await sink.start()
    try:
        for i in range(RECORDS):
            await sink.send(ProducerRecord(topic, b"BTCUSDT", b"trade %d" % i, []))
            if i % 100 == 99:
                await sink.flush()  # a batch per flush: several batches, one producer session
    finally:
        await sink.stop()
    assert sink.stats.acked == RECORDS

    batches = await fetch_batches(kafka_bootstrap, topic)
    assert sum(b[3] for b in batches) == RECORDS
    assert len(batches) > 1  # several batches, so the sequence check below means something
    [(producer_id, epoch)] = {(b[0], b[1]) for b in batches}  # one producer session wrote all
    assert producer_id != NO_PRODUCER_ID and producer_id >= 0
    assert epoch >= 0
    expected_sequence = 0
    for _, _, base_sequence, count in batches:
        assert base_sequence == expected_sequence  # numbered from 0, no gap: dedup is on
        expected_sequence += count
