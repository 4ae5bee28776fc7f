"""The sink's batches land where ``send()`` would have put each record, in order, on a real broker.

The sink appends records to aiokafka's batches itself and picks their partition
(``gateway.adapters.kafka_batches``); a plain ``AIOKafkaProducer.send()`` of the same keys into a
topic with as many partitions is the oracle. Per key, the values arrive in the order sent.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from gateway.adapters.kafka import KafkaSink, ensure_topics
from gateway.records.topics import ProducerRecord
from gateway.settings import KafkaSettings

pytestmark = [pytest.mark.kafka]

PARTITIONS = 6
KEYS = [f"K{i}USDT".encode() for i in range(300)] + [b"BTCUSDT", b"1000PEPEUSDT", b""]
PER_KEY = 5


async def consume(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, int, bytes]]:
    """``(key, partition, value)`` of the topic's records, in offset order per partition."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[tuple[bytes, int, bytes]] = []
    try:
        while len(found) < expected:
            batches = await consumer.getmany(timeout_ms=30_000)
            assert batches, f"{len(found)} of {expected} records read"
            for tp, messages in batches.items():
                found.extend((m.key or b"", tp.partition, m.value or b"") for m in messages)
    finally:
        await consumer.stop()
    return found


async def test_each_key_lands_in_the_partition_send_picks_in_order(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix, partitions=PARTITIONS
    )
    ours, oracle = f"{topic_prefix}.spot.trade", f"{topic_prefix}.spot.agg_trade"
    await ensure_topics(settings, [ours, oracle])

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        expected = {
            key: (await producer.send_and_wait(oracle, b"oracle", key=key)).partition
            for key in KEYS
        }
    finally:
        await producer.stop()
    assert len(set(expected.values())) == PARTITIONS  # the keys cover every partition

    sink = KafkaSink(settings)
    await sink.start()
    for round_ in range(PER_KEY):
        for key in KEYS:
            await sink.send(ProducerRecord(ours, key, b"%d" % round_, []))
    await sink.stop()
    assert sink.stats.acked == len(KEYS) * PER_KEY

    seen: dict[bytes, list[bytes]] = defaultdict(list)
    for key, partition, value in await consume(kafka_bootstrap, ours, len(KEYS) * PER_KEY):
        assert partition == expected[key], key
        seen[key].append(value)
    assert seen == {key: [b"%d" % r for r in range(PER_KEY)] for key in KEYS}
