"""A worker taking symbols over continues exactly where Kafka's topics end, on a real broker.

``LastIdReader`` finds each symbol's last trade and aggregate-trade id where the producer put it;
``TradeContinuity.resume`` seeds from them, so a second gateway run publishes none of what the
first one did and backfills from REST what happened while no one was streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer

from gateway.adapters.binance_rest import BinanceRestClient
from gateway.adapters.binance_ws import BinanceStreamClient
from gateway.adapters.decoder import ValueDecoder
from gateway.adapters.kafka import KafkaSink, ensure_topics
from gateway.adapters.kafka_tail import ID_FIELDS, LastIdReader, partition_for
from gateway.adapters.registry import SchemaRegistryClient, register_catalog
from gateway.binance.events.base import scaled
from gateway.binance.events.trades import AggTrade, Trade
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.binance.streams import combined_path, stream_name
from gateway.consumers.reader import read_all
from gateway.metrics import Metrics
from gateway.records.avro import ConfluentFraming, Framing, SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer
from gateway.runtime.pipeline import FramePipeline
from gateway.runtime.sequence import TradeContinuity
from gateway.settings import GatewaySettings, KafkaSettings
from tests.integration.conftest import SimulatorFactory, TaskUnderTest, gateway_settings

pytestmark = [pytest.mark.kafka]

CATALOG = SchemaCatalog.load()
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def trade(symbol: str, trade_id: int) -> Trade:
    return Trade(
        market="spot", symbol=symbol, event_time_us=1, trade_id=trade_id, price=scaled("1.5", "p"),
        quantity=scaled("2", "q"), trade_time_us=1, buyer_is_maker=False, best_match=None, trade_type=None,
        received_at_us=1,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def framing_and_decoder(
    registry_url: str | None, namer: TopicNamer
) -> AsyncIterator[tuple[Framing, ValueDecoder]]:
    """What a worker has: the framing it writes with, and a decoder for what is in Kafka."""
    if registry_url is None:
        yield SingleObjectFraming(), ValueDecoder(CATALOG)
        return
    async with SchemaRegistryClient(registry_url) as registry:
        ids = await register_catalog(registry, CATALOG, namer)
        yield ConfluentFraming(ids), ValueDecoder(CATALOG, registry)


@pytest.fixture(params=["single-object", pytest.param("registry", marks=pytest.mark.registry)])
def registry_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("schema_registry_url") if request.param == "registry" else None


async def test_the_reader_finds_keys_where_the_producer_put_them(
    kafka_bootstrap: str, topic_prefix: str, registry_url: str | None
) -> None:
    """Through KafkaSink: every record sits in partition_for(key); the last id per key is read."""
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix, partitions=5
    )
    namer = TopicNamer(topic_prefix)
    symbols = [f"SYM{i}USDT" for i in range(12)]
    await ensure_topics(settings, [namer.topic("spot", Trade.KIND)])  # agg_trade: no topic yet
    async with framing_and_decoder(registry_url, namer) as (framing, decoder):
        builder = RecordBuilder(CATALOG, framing, namer, "it")
        sink = KafkaSink(settings)
        await sink.start()
        try:
            for trade_id in range(1, 31):
                for n, symbol in enumerate(symbols[:-1]):  # the last symbol is never written
                    if trade_id <= 10 + n:
                        await sink.send(builder.build(trade(symbol, trade_id * 100 + n)))
        finally:
            await sink.stop()

        consumer = AIOKafkaConsumer(
            namer.topic("spot", Trade.KIND),
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            seen = 0
            while seen < sink.stats.acked:
                for tp, messages in (await consumer.getmany(timeout_ms=1000)).items():
                    for message in messages:
                        assert tp.partition == partition_for(message.key, range(5))
                        seen += 1
        finally:
            await consumer.stop()

        async with LastIdReader(settings, namer, decoder) as reader:
            found = await reader.last_ids(Market.SPOT, symbols)
    assert found == {
        (symbol, Trade.KIND): (10 + n) * 100 + n for n, symbol in enumerate(symbols[:-1])
    }


async def test_a_symbol_quiet_for_longer_than_the_first_window_is_found_further_back(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gateway.adapters.kafka_tail")
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix, partitions=1
    )
    namer = TopicNamer(topic_prefix)
    await ensure_topics(settings, [namer.topic("spot", Trade.KIND)])
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), namer, "it")
    sink = KafkaSink(settings)
    await sink.start()
    try:
        for trade_id in range(1, 6):
            await sink.send(builder.build(trade("QUIETUSDT", trade_id)))
        for trade_id in range(1, 201):
            await sink.send(builder.build(trade("BUSYUSDT", trade_id)))
    finally:
        await sink.stop()

    decoder = ValueDecoder(CATALOG)
    async with LastIdReader(settings, namer, decoder, first_window=20) as reader:
        found = await reader.last_ids(Market.SPOT, ["QUIETUSDT", "BUSYUSDT", "NEVERUSDT"])
        [scan] = reader.last_scans.values()
        assert found == {("QUIETUSDT", Trade.KIND): 5, ("BUSYUSDT", Trade.KIND): 200}
        assert scan.windows == 3  # [185,205), [105,185), [0,105): the quiet one only in the last
        assert scan.lower == 0
        assert scan.end == 205
        # One reader serves any number of calls (a worker keeps it for every shard it acquires).
        assert await reader.last_ids(Market.SPOT, ["QUIETUSDT", "BUSYUSDT"]) == found

    # With a cap below its distance from the end, the quiet symbol is given up on, loudly.
    async with LastIdReader(
        settings, namer, decoder, first_window=20, max_records_per_partition=150
    ) as reader:
        found = await reader.last_ids(Market.SPOT, ["QUIETUSDT", "BUSYUSDT"])
    assert found == {("BUSYUSDT", Trade.KIND): 200}
    assert "for 1 of 4 symbol streams; 3 not found" in caplog.text


async def test_no_topics_yet_means_nothing_to_resume(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    async with LastIdReader(settings, TopicNamer(topic_prefix), ValueDecoder(CATALOG)) as reader:
        assert await reader.last_ids(Market.SPOT, SYMBOLS) == {}


class ResumedGateway(TaskUnderTest):
    """The pieces of a worker for one market's trades, seeded from Kafka before connecting.

    What the worker does when it acquires a shard: read the last ids, ``resume``, then open the
    shard's connections. Built here from the public parts because worker.py is being rewritten;
    the first run uses it too, and finds nothing to resume from (empty topics).
    """

    def __init__(self, settings: GatewaySettings, name: str) -> None:
        super().__init__()
        self.settings = settings
        self.name = name
        self.sink = KafkaSink(settings.kafka)
        self.metrics = Metrics()
        self.last_ids: dict[tuple[str, str], int] | None = None
        self.client: BinanceStreamClient | None = None
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        market, binance = Market.SPOT, self.settings.binance
        spot = binance.markets[market]
        namer = TopicNamer(self.settings.kafka.topic_prefix)
        async with (
            framing_and_decoder(self.settings.registry.url, namer) as (framing, decoder),
            BinanceRestClient(binance.rest_url(market), market) as rest,
        ):
            builder = RecordBuilder(CATALOG, framing, namer, self.name)
            await ensure_topics(self.settings.kafka, [namer.topic("spot", k) for k in ID_FIELDS])
            await self.sink.start()
            continuity = TradeContinuity(market, rest, builder, self.sink, self.metrics)
            try:
                async with LastIdReader(self.settings.kafka, namer, decoder) as reader:
                    self.last_ids = await reader.last_ids(market, spot.symbols)
                continuity.resume(self.last_ids)
                names = [stream_name(s, c) for s in spot.symbols for c in spot.channels]
                pipeline = FramePipeline(
                    FrameParser(market, spot.time_unit), builder, self.sink, self.metrics,
                    connection=self.name, continuity=continuity,
                )  # fmt: skip
                url = binance.stream_url(market) + combined_path(names, spot.time_unit)
                self.client = BinanceStreamClient(url, pipeline, binance, name=self.name)
                reader_task = asyncio.create_task(self.client.run())
                await self._stop.wait()
                reader_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader_task
            finally:
                await continuity.stop()
                await self.sink.stop()

    async def wait_connected(self, timeout_s: float = 20.0) -> None:
        await self.wait_until(
            lambda: self.client is not None and self.client.connected.is_set(), timeout_s
        )

    async def wait_acked(self, count: int, timeout_s: float = 60.0) -> None:
        await self.wait_until(lambda: self.sink.stats.acked >= count, timeout_s)


async def test_a_second_run_continues_where_kafka_ends_without_duplicate_or_hole(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    topic_prefix: str,
    registry_url: str | None,
) -> None:
    sim = await simulator_factory(
        symbols=SYMBOLS, seed=11, trades_per_second_per_symbol=250,
        max_trades_per_symbol=1500, start_paused=True,
    )  # fmt: skip
    settings = gateway_settings(
        sim, symbols=SYMBOLS, kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix, registry_url=registry_url,
    )  # fmt: skip

    first = ResumedGateway(settings, "first")
    await first.wait_connected()
    await sim.wait_for_subscribers(2 * len(SYMBOLS), timeout_s=10)
    sim.resume()
    await asyncio.sleep(1.5)
    await first.stop()  # drained: what it read is in Kafka
    first_acked = first.sink.stats.acked
    assert first_acked > 0
    assert first.last_ids == {}  # the topics were empty: each symbol began at its first live id
    await asyncio.sleep(1.5)  # the exchange trades on with no one streaming

    second = ResumedGateway(settings, "second")
    await sim.wait_idle(timeout_s=30)
    trades = {s: [t["t"] for t in sim.history.trades(s)] for s in SYMBOLS}
    aggs = {s: [a["a"] for a in sim.history.agg_trades(s)] for s in SYMBOLS}
    expected = sum(map(len, trades.values())) + sum(map(len, aggs.values()))
    await second.wait_acked(expected - first_acked)
    await second.stop()

    assert second.last_ids is not None
    assert set(second.last_ids) == {(s, k) for s in SYMBOLS for k in (Trade.KIND, AggTrade.KIND)}
    records = await read_all(
        [f"{topic_prefix}.spot.trade", f"{topic_prefix}.spot.agg_trade"],
        bootstrap_servers=kafka_bootstrap, registry_url=registry_url, expected=expected,
        settle_s=1.5,
    )  # fmt: skip
    ids: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    by_run: dict[tuple[str, str | None, str], list[int]] = defaultdict(list)
    backfilled: Counter[tuple[str, str | None]] = Counter()
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        kind = record.topic.rsplit(".", 1)[-1]
        record_id = record.value[ID_FIELDS[kind]]
        ids[(kind, record.key)].append(record_id)
        by_run[(kind, record.key, record.headers["gateway_id"])].append(record_id)
        backfilled[(kind, record.key)] += record.headers.get("backfilled") == "1"
    for symbol in SYMBOLS:
        # Every id from the exchange's first to its last, once, in order, across both runs.
        assert ids[(Trade.KIND, symbol)] == trades[symbol]
        assert ids[(AggTrade.KIND, symbol)] == aggs[symbol]
        assert trades[symbol] == list(range(trades[symbol][0], trades[symbol][-1] + 1))
        for kind in ID_FIELDS:
            # The second run began right after the first one's last record...
            last_id = second.last_ids[(symbol, kind)]
            assert by_run[(kind, symbol, "first")][-1] == last_id
            assert by_run[(kind, symbol, "second")][0] == last_id + 1
            # ...and the trades of the pause came from REST.
            assert backfilled[(kind, symbol)] > 0
    assert len(records) == expected
    assert second.metrics.trade_gaps.labels("spot", "trade").get() == 0
