"""gateway.consumers.reader.read_all keeps every record of a batch, not only those up to ``expected``.

It used to stop iterating mid-batch once it had ``expected`` records, and the rest of that batch,
already fetched from Kafka, was lost to its settle phase: read_all(expected=1) over a topic of
ten records returned one.
"""

from __future__ import annotations

import pytest

from gateway.adapters.kafka import KafkaSink, ensure_topics
from gateway.consumers.reader import read_all
from gateway.settings import KafkaSettings
from tests.integration.kafka_login_support import trade_record

pytestmark = pytest.mark.kafka

RECORDS = 10


async def test_read_all_returns_the_rest_of_the_batch_after_expected(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix, partitions=1
    )
    record = trade_record(topic_prefix)
    await ensure_topics(settings, [record.topic])
    sink = KafkaSink(settings)
    await sink.start()
    for _ in range(RECORDS):
        await sink.send(record)
    await sink.stop()
    assert sink.stats.acked == RECORDS

    # One partition, ten small records: the first fetch returns them all in one batch.
    found = await read_all(
        [record.topic], bootstrap_servers=kafka_bootstrap, expected=1, timeout_s=30, settle_s=1
    )
    assert [r.offset for r in found] == list(range(RECORDS))
