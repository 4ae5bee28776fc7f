"""A record the broker would refuse is never sent, and one it refuses anyway never stops the sink.

Real broker, real sink (issue 13): before, a 1.5 MB trade frame, or a record the broker refused for
itself (too large for its topic, a timestamp outside the broker's window), failed the sink and the
worker exited 1. Now each becomes a dead letter carrying the reason, and what follows is delivered.
"""

from __future__ import annotations

import os
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gateway.adapters.kafka import KafkaSink, ensure_topics
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.consumers.reader import read_all
from gateway.metrics import Metrics
from gateway.records.avro import SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.runtime.pipeline import FramePipeline
from gateway.settings import KafkaSettings
from tests.vectors import vector

pytestmark = pytest.mark.kafka

CATALOG = SchemaCatalog.load()
INCOMPRESSIBLE = os.urandom(20_000)  # over the topic's 2000 bytes even after lz4


def trade_frame(trade_id: int, event_time_ms: int, **extra: object) -> bytes:
    payload = {**vector("spot/trade.json"), "t": trade_id, "E": event_time_ms, **extra}
    return orjson.dumps(payload)


async def raw_values(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    values: list[bytes] = []
    try:
        for _ in range(20):
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(m.value for m in messages)
            if len(values) >= expected:
                break
    finally:
        await consumer.stop()
    return values


async def started_sink(bootstrap: str, prefix: str, builder: RecordBuilder) -> KafkaSink:
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=1)
    namer = TopicNamer(prefix)
    await ensure_topics(
        settings, [namer.topic("spot", "trade"), namer.dead_letter_topic(), f"{prefix}.tiny"]
    )
    sink = KafkaSink(settings)
    sink.route_refusals(builder.refused)
    await sink.start()
    return sink


async def spot_pipeline(bootstrap: str, prefix: str) -> tuple[TopicNamer, KafkaSink, FramePipeline]:
    """Spot frames through the real pipeline into a started sink (stop it to flush)."""
    namer = TopicNamer(prefix)
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), namer, "it")
    sink = await started_sink(bootstrap, prefix, builder)
    pipeline = FramePipeline(FrameParser(Market.SPOT), builder, sink, Metrics(), connection="c")
    return namer, sink, pipeline


async def test_an_oversized_frame_is_dead_lettered_before_the_send(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    namer, sink, pipeline = await spot_pipeline(kafka_bootstrap, topic_prefix)
    now_ms = int(time.time() * 1000)
    huge = trade_frame(1, now_ms, zz_padding="x" * 1_500_000)  # under 4 MiB, over Kafka's 1 MiB
    await pipeline(huge, now_ms * 1000, time.monotonic_ns())
    await pipeline(trade_frame(2, now_ms), now_ms * 1000, time.monotonic_ns())
    await sink.stop()  # flushes: raised KafkaDeliveryError (MessageSizeTooLarge) before

    trades = await read_all(
        [namer.topic("spot", "trade")], bootstrap_servers=kafka_bootstrap, expected=1
    )
    letters = await read_all(
        [namer.dead_letter_topic()], bootstrap_servers=kafka_bootstrap, expected=1
    )
    assert [r.value["trade_id"] for r in trades] == [2]
    [letter] = letters
    assert letter.value["stage"] == "size"
    assert "max_record_bytes" in letter.value["error"]
    assert letter.value["raw_size"] == len(huge)
    assert letter.value["raw"] == huge[: 256 * 1024]


async def test_the_kafka_timestamp_is_the_receive_time_not_binance_event_time(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    namer, sink, pipeline = await spot_pipeline(kafka_bootstrap, topic_prefix)
    received_us = time.time_ns() // 1000
    event_ms = received_us // 1000 - 30 * 60 * 1000  # a replayed or late event: E half an hour old
    await pipeline(trade_frame(7, event_ms), received_us, time.monotonic_ns())
    await sink.stop()

    [trade] = await read_all(
        [namer.topic("spot", "trade")], bootstrap_servers=kafka_bootstrap, expected=1
    )
    assert trade.timestamp_ms == received_us // 1000  # retention counts from here
    assert int(trade.value["event_time_us"].timestamp() * 1000) == event_ms  # E kept in the value


async def test_records_the_broker_refuses_for_themselves_are_dead_lettered_and_the_sink_goes_on(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    namer = TopicNamer(topic_prefix)
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), namer, "it")
    tiny = f"{topic_prefix}.tiny-limit"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(tiny, 1, 1, topic_configs={"max.message.bytes": "2000"})]
        )
    finally:
        await admin.close()
    sink = await started_sink(kafka_bootstrap, topic_prefix, builder)
    received_us = time.time_ns() // 1000
    headers = [("received_at_us", str(received_us).encode())]
    too_large_for_topic = ProducerRecord(tiny, b"k", INCOMPRESSIBLE, headers)
    future_timestamp = ProducerRecord(
        tiny, b"k", b"late", headers, timestamp_ms=received_us // 1000 + 3 * 3600 * 1000
    )
    fine = ProducerRecord(tiny, b"k", b"fine", headers)
    for record in (too_large_for_topic, future_timestamp, fine):
        await sink.send(record)
        await sink.flush()  # one batch each: the broker judges each record on its own
    # Refused batches in flight with valid ones: those behind fail their sequence, are resent.
    for record in (too_large_for_topic, fine, fine):
        await sink.send(record)
    await sink.stop()  # raised KafkaDeliveryError before

    # The two valid records that shared a batch with a refused one are delivered all the same.
    assert await raw_values(kafka_bootstrap, tiny, expected=3) == [b"fine"] * 3
    letters = await read_all(
        [namer.dead_letter_topic()], bootstrap_servers=kafka_bootstrap, expected=3
    )
    errors = [letter.value["error"] for letter in letters]
    assert len(errors) == 3
    assert "TooLarge" in errors[0] and "TooLarge" in errors[2]
    assert "InvalidTimestamp" in errors[1]
    assert [letter.value["stage"] for letter in letters] == ["kafka"] * 3
    assert letters[0].value["raw"] == INCOMPRESSIBLE
    assert letters[0].value["stream"] == tiny
    assert sink.stats.refused == 3
