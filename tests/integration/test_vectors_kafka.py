"""Every official Binance payload, through the whole record path and a real broker and registry.

parse → RecordBuilder (Confluent wire format, ids from the real registry) → KafkaSink → Kafka →
RecordReader (writer schema fetched from the registry by id) → every wire key checked against the
decoded record with the independent wire maps of the unit test: exact values, nothing dropped,
unknown fields preserved.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
import pytest

from gateway.adapters.kafka import KafkaSink, ensure_topics
from gateway.adapters.registry import SchemaRegistryClient, register_catalog
from gateway.binance.markets import Market
from gateway.binance.messages import ControlReply, FrameParser, RecordEvent, ServerShutdown
from gateway.consumers.reader import ConsumedRecord, read_all
from gateway.records.avro import ConfluentFraming, SchemaCatalog
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.settings import KafkaSettings
from tests.unit.records.test_records_vectors import (
    CASES,
    CONTEXT_FIELDS,
    RECEIVED_AT_US,
    SYMBOL_TYPES,
    WIRE_MAPS,
    Case,
    check_object,
    market_cases,
    unwrap,
)
from tests.vectors import vector

pytestmark = [pytest.mark.kafka, pytest.mark.registry]


def with_unknown_field(message: Any) -> Any:
    """The same frame with a field Binance might add tomorrow in every payload."""
    payloads, _ = unwrap(message)
    for payload in payloads:
        payload["zz_new"] = {"since": "tomorrow"}
    return message


async def test_every_vector_arrives_through_kafka_exactly(
    kafka_bootstrap: str, schema_registry_url: str, topic_prefix: str
) -> None:
    catalog, namer = SchemaCatalog.load(), TopicNamer(topic_prefix)
    async with SchemaRegistryClient(schema_registry_url) as client:
        ids = await register_catalog(client, catalog, namer)
    builder = RecordBuilder(catalog, ConfluentFraming(ids), namer, "vectors-test")

    # topic -> [(case, payload, market, event), ...] in send order
    sent: defaultdict[str, list[tuple[Case, Any, Market, RecordEvent]]] = defaultdict(list)
    records: list[ProducerRecord] = []
    for name, market in market_cases():
        case = CASES[name]
        for message in (vector(name), with_unknown_field(vector(name))):
            events = FrameParser(market).parse(
                orjson.dumps(message), RECEIVED_AT_US, stream=case.stream
            )
            payloads, _ = unwrap(message)
            for event, payload in zip(events, payloads, strict=True):
                # Every vector is data: no control reply or shutdown notice among them.
                assert not isinstance(event, ControlReply | ServerShutdown), name
                record = builder.build(event)
                records.append(record)
                sent[record.topic].append((case, payload, market, event))

    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix, partitions=1
    )
    await ensure_topics(settings, sent)
    sink = KafkaSink(settings)
    await sink.start()
    for record in records:
        await sink.send(record)
    await sink.stop()
    assert sink.stats.acked == len(records)

    consumed = await read_all(
        list(sent), bootstrap_servers=kafka_bootstrap, registry_url=schema_registry_url,
        expected=len(records), settle_s=1.0,
    )  # fmt: skip
    assert len(consumed) == len(records)
    by_topic: defaultdict[str, list[ConsumedRecord]] = defaultdict(list)
    for got in sorted(consumed, key=lambda r: (r.topic, r.offset)):
        by_topic[got.topic].append(got)

    kinds: set[tuple[str, str]] = set()
    for topic, expected in sent.items():
        assert len(by_topic[topic]) == len(expected), topic
        for got, (case, payload, market, event) in zip(by_topic[topic], expected, strict=True):
            value = got.value
            used = check_object(payload, WIRE_MAPS[case.cls], value, value, "")
            invented = {k for k, v in value.items() if v is not None and k not in used}
            assert invented <= CONTEXT_FIELDS | case.from_stream, (topic, invented)
            assert value["market"] == SYMBOL_TYPES.get(payload.get("st"), market.value)
            assert got.key == event.partition_key
            assert got.headers["event_kind"] == event.KIND
            kinds.add((event.schema_group, event.KIND))
    # Every record kind the vectors cover made it: public and account data of all markets.
    assert {group for group, _ in kinds} == {
        "spot",
        "usdm",
        "coinm",
        "spot_user",
        "usdm_user",
        "coinm_user",
    }
