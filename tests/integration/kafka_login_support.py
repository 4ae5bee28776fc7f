"""Shared pieces of the Kafka login tests (SASL, OAUTHBEARER, mutual TLS): one trade record,
sent and read back through a login, and a refused login's clear, quick error."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from gateway.adapters.kafka import KafkaSink, ensure_topics
from gateway.adapters.kafka_security import KafkaSecuritySettings
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser, Trade
from gateway.consumers.reader import ConsumedRecord, RecordReader, read_all
from gateway.errors import KafkaDeliveryError
from gateway.records.avro import SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.settings import KafkaSettings

# Plenty for a refused login on loopback; far less than the hang a retry loop would be.
REFUSAL_WITHIN_S = 30.0


def trade_record(topic_prefix: str) -> ProducerRecord:
    """Binance's trade 4242 on BTCUSDT, as the gateway records it."""
    frame = {
        "e": "trade",
        "E": 1_700_000_000_123,
        "s": "BTCUSDT",
        "t": 4_242,
        "p": "37000.01000000",
        "q": "0.00100000",
        "T": 1_700_000_000_120,
        "m": True,
        "M": True,
    }
    [event] = FrameParser(Market.SPOT).parse(
        orjson.dumps(frame), 1_700_000_000_200_000, stream="btcusdt@trade"
    )
    assert isinstance(event, Trade)
    builder = RecordBuilder(
        SchemaCatalog.load(), SingleObjectFraming(), TopicNamer(topic_prefix), "sasl-test"
    )
    return builder.build(event)


async def produce_trade(settings: KafkaSettings) -> ProducerRecord:
    """Create the trade's topic and send ``trade_record`` to it, both through ``settings``."""
    record = trade_record(settings.topic_prefix)
    assert await ensure_topics(settings, [record.topic]) == [record.topic]
    sink = KafkaSink(settings)
    await sink.start()
    await sink.send(record)
    await sink.stop()
    assert (sink.stats.acked, sink.stats.failed) == (1, 0)
    return record


async def round_trip(
    bootstrap_servers: str, security: KafkaSecuritySettings, prefix: str
) -> ConsumedRecord:
    """Create a topic, send a record and read it back, each through ``security``."""
    settings = KafkaSettings(
        bootstrap_servers=bootstrap_servers, topic_prefix=prefix, partitions=1, security=security
    )
    record = await produce_trade(settings)
    [consumed] = await read_all(
        [record.topic],
        bootstrap_servers=bootstrap_servers,
        expected=1,
        timeout_s=30,
        settle_s=0.5,
        security=security,
    )
    return consumed


async def assert_refused(
    bootstrap_servers: str, security: KafkaSecuritySettings, prefix: str
) -> KafkaDeliveryError:
    """The producer and the reader are refused, each within ``REFUSAL_WITHIN_S`` and with a
    clear error; returns the producer's."""
    settings = KafkaSettings(
        bootstrap_servers=bootstrap_servers,
        topic_prefix=prefix,
        request_timeout_ms=10_000,
        security=security,
    )
    sink = KafkaSink(settings)
    with pytest.raises(KafkaDeliveryError, match="connecting the producer") as caught:
        await asyncio.wait_for(sink.start(), REFUSAL_WITHIN_S)
    await sink.stop()  # nothing was started; stopping is still safe
    reader = RecordReader([f"{prefix}.x"], bootstrap_servers=bootstrap_servers, security=security)
    with pytest.raises(KafkaDeliveryError, match="starting the consumer"):
        await asyncio.wait_for(reader.__aenter__(), REFUSAL_WITHIN_S)
    return caught.value
