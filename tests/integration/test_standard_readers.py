"""The gateway's topics read by third-party readers nobody on the project wrote.

* Registry mode: Confluent's Python client (``confluent-kafka``'s ``AvroDeserializer`` with its
  ``SchemaRegistryClient``, over Apicurio's Confluent-compatible API) and Apicurio's Java serde.
* Registry-less mode: Apache Avro's own Java ``BinaryMessageDecoder`` (single-object encoding).

Every topic a simulator run writes is read; each reader's values equal the gateway's own reading
of the same offsets, and trades and aggregate trades equal the simulator's ground truth.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway.consumers.reader import ConsumedRecord, read_all
from gateway.records.avro import SCHEMAS_DIR
from gateway.records.topics import TopicNamer
from gateway.simulator.exchange import ExchangeSimulator
from tests import jvm_reader
from tests.integration.conftest import RunningGateway, SimulatorFactory, gateway_settings

pytestmark = [pytest.mark.kafka, pytest.mark.registry, pytest.mark.slow]

SYMBOLS = ("BTCUSDT", "ETHUSDT")
TRADES_PER_SYMBOL = 150
# (topic, partition, offset) -> the decoded value, as one reader saw it
Readings = dict[tuple[str, int, int], dict[str, Any]]
CHANNELS = ("trade", "aggTrade", "bookTicker", "depth@100ms", "kline_1m", "miniTicker")
KINDS = {
    "trade",
    "agg_trade",
    "book_ticker",
    "depth_update",
    "book_snapshot",
    "kline",
    "mini_ticker",
}


def micros(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class Run:
    """What one simulator run wrote, as the gateway itself reads it back, and the ground truth."""

    def __init__(self, records: list[ConsumedRecord], sim: ExchangeSimulator, prefix: str) -> None:
        self.records = {(r.topic, r.partition, r.offset): r for r in records}
        self.prefix = prefix
        self.trades = {s: sim.history.trades(s) for s in SYMBOLS}
        self.aggs = {s: sim.history.agg_trades(s) for s in SYMBOLS}

    @property
    def topics(self) -> list[str]:
        return sorted({topic for topic, _, _ in self.records})

    def check_topics(self) -> None:
        kinds = {t.removeprefix(self.prefix).split(".")[-1] for t in self.topics}
        # The stop declares the open windows of the periodic streams on stream_status: read too.
        assert kinds - {"stream_status"} == KINDS, kinds

    def check_ground_truth(self, got: Readings, as_text: bool) -> None:
        """Trades and aggregate trades as a third-party reader decoded them = what was sent."""
        for kind, sent_by_symbol, id_field, id_key in (
            ("trade", self.trades, "trade_id", "t"),
            ("agg_trade", self.aggs, "agg_trade_id", "a"),
        ):
            topic = f"{self.prefix}.spot.{kind}"
            for symbol, sent in sent_by_symbol.items():
                values = [
                    v
                    for (t, _, offset), v in sorted(got.items())
                    if t == topic and v["symbol"] == symbol
                ]
                assert [v[id_field] for v in values] == [s[id_key] for s in sent], (kind, symbol)
                for value, payload in zip(values, sent, strict=True):
                    for field, key in (("price", "p"), ("quantity", "q")):
                        assert Decimal(str(value[field])) == Decimal(payload[key])
                    event_time = value["event_time_us"]
                    assert (event_time if as_text else micros(event_time)) == payload["E"] * 1000
                    assert value["buyer_is_maker"] is payload["m"]


async def wait_for_every_kind(running: RunningGateway, prefix: str, timeout_s: float = 60) -> None:
    """Until Kafka acknowledged a record of every kind: the periodic streams (klines, tickers,
    depth and its book snapshot) come on their cadence, later than the trades on a busy machine."""

    def acked_kinds() -> set[str]:
        return {
            sample.labels["topic"].removeprefix(prefix).split(".")[-1]
            for metric in running.gateway.metrics.records_acked.collect()
            for sample in metric.samples
            if sample.name.endswith("_total") and sample.value > 0
        }

    deadline = asyncio.get_running_loop().time() + timeout_s
    while not acked_kinds() >= KINDS:
        assert asyncio.get_running_loop().time() < deadline, acked_kinds()
        await asyncio.sleep(0.2)


async def simulator_run(
    sim_factory: SimulatorFactory, kafka_bootstrap: str, registry_url: str | None, prefix: str
) -> Run:
    sim = await sim_factory(
        symbols=SYMBOLS,
        seed=21,
        trades_per_second_per_symbol=None,
        max_trades_per_symbol=TRADES_PER_SYMBOL,
        start_paused=True,
    )
    settings = gateway_settings(
        sim,
        symbols=SYMBOLS,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=prefix,
        registry_url=registry_url,
        channels=CHANNELS,
        book_depth_limit=100,
    )
    running = RunningGateway(settings)
    await running.wait_connected()
    await sim.wait_for_subscribers(len(SYMBOLS) * len(CHANNELS), timeout_s=15)
    sim.resume()
    await sim.wait_idle(timeout_s=60)
    trades = sum(len(sim.history.trades(s)) + len(sim.history.agg_trades(s)) for s in SYMBOLS)
    await running.wait_acked(trades)
    await wait_for_every_kind(running, prefix)  # klines, tickers and depth on their cadence
    await running.stop()
    acked = running.gateway.sink.stats.acked
    records = await read_all(
        running.gateway.topics(),
        bootstrap_servers=kafka_bootstrap,
        registry_url=registry_url,
        expected=acked,
        settle_s=1.0,
    )
    assert len(records) == acked
    return Run(records, sim, prefix)


def same(ours: Any, theirs: Any, where: str) -> None:
    """The gateway's reading (fastavro types) equals a JVM reader's JSON (decimals as plain
    strings, timestamps as long micros, bytes as base64)."""
    if isinstance(ours, dict):
        assert isinstance(theirs, dict) and set(ours) == set(theirs), where
        for name, value in ours.items():
            same(value, theirs[name], f"{where}.{name}")
    elif isinstance(ours, list):
        assert isinstance(theirs, list) and len(ours) == len(theirs), where
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            same(a, b, f"{where}[{index}]")
    elif isinstance(ours, Decimal):
        assert Decimal(theirs) == ours, where
    elif isinstance(ours, datetime):
        assert theirs == micros(ours), where
    elif isinstance(ours, bytes):
        import base64

        assert base64.b64decode(theirs) == ours, where
    else:
        assert theirs == ours and type(theirs) is type(ours), where


def compare_jvm(run: Run, lines: list[dict[str, Any]]) -> Readings:
    got = {(line["topic"], line["partition"], line["offset"]): line["value"] for line in lines}
    assert set(got) == set(run.records)
    for key, value in got.items():
        record = run.records[key]
        assert (
            next(
                line["key"]
                for line in lines
                if (line["topic"], line["partition"], line["offset"]) == key
            )
            == record.key
        )
        same(record.value, value, f"{key}")
    return got


def confluent_read(bootstrap: str, registry_url: str, topics: list[str], count: int) -> Readings:
    """Confluent's own client and Avro deserializer; blocking, so run in a thread."""
    from confluent_kafka import Consumer
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    registry = SchemaRegistryClient({"url": registry_url})
    deserialize = AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"confluent-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    got: Readings = {}
    try:
        consumer.subscribe(topics)
        for _ in range(600):  # polls of 0.2 s: two minutes at most
            message = consumer.poll(0.2)
            if message is None:
                if len(got) >= count:
                    break
                continue
            assert message.error() is None, message.error()
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            # Set on every message a subscription delivers (None only on produce-side errors).
            assert topic is not None and partition is not None and offset is not None
            value = deserialize(message.value(), SerializationContext(topic, MessageField.VALUE))
            got[(topic, partition, offset)] = value
    finally:
        consumer.close()
        registry.close()
    return got


async def test_registry_topics_read_by_confluent_kafka_and_apicurios_java_serde(
    simulator_factory: SimulatorFactory, kafka_bootstrap: str, schema_registry_url: str
) -> None:
    prefix = f"std{uuid.uuid4().hex[:8]}"
    run = await simulator_run(simulator_factory, kafka_bootstrap, schema_registry_url, prefix)
    run.check_topics()

    confluent = await asyncio.to_thread(
        confluent_read, kafka_bootstrap, schema_registry_url, run.topics, len(run.records)
    )
    assert set(confluent) == set(run.records)
    for key, value in confluent.items():
        assert value == run.records[key].value, key
    run.check_ground_truth(confluent, as_text=False)

    registry_v3 = schema_registry_url.replace("/apis/ccompat/v7", "/apis/registry/v3")
    lines = await asyncio.to_thread(
        jvm_reader.read,
        ["apicurio", kafka_bootstrap, str(len(run.records)), registry_v3, *run.topics],
    )
    run.check_ground_truth(compare_jvm(run, lines), as_text=True)


async def test_registry_less_topics_read_by_apache_avros_binary_message_decoder(
    simulator_factory: SimulatorFactory, kafka_bootstrap: str
) -> None:
    prefix = f"std{uuid.uuid4().hex[:8]}"
    run = await simulator_run(simulator_factory, kafka_bootstrap, None, prefix)
    run.check_topics()
    namer = TopicNamer(prefix)
    schema_of = {
        namer.topic(group.name, path.stem): path
        for group in SCHEMAS_DIR.iterdir()
        if group.is_dir() and group.name != "released"
        for path in group.glob("*.avsc")
    }
    # The gateway's own records (dead_letter, trade_gap, stream_status) have no market in their topic.
    schema_of |= {
        namer.gateway_topic(path.stem): path for path in (SCHEMAS_DIR / "gateway").glob("*.avsc")
    }
    args = [f"{topic}={schema_of[topic]}" for topic in run.topics]
    lines = await asyncio.to_thread(
        jvm_reader.read, ["single-object", kafka_bootstrap, str(len(run.records)), *args]
    )
    run.check_ground_truth(compare_jvm(run, lines), as_text=True)
