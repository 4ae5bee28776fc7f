"""Order books rebuilt from Kafka alone equal the exchange's, across a depth gap and a resync."""

from __future__ import annotations

import asyncio

import pytest

from gateway.consumers.book_rebuilder import BookRebuilder
from gateway.consumers.reader import read_all
from gateway.settings import GatewaySettings
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator
from tests.faults.books_support import exchange_book
from tests.integration.conftest import RunningGateway

pytestmark = [pytest.mark.kafka]

SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.mark.parametrize("market", ["spot", "usdm"])
async def test_books_rebuilt_from_kafka_equal_the_exchange(
    market: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    config = SimulatorConfig(
        market=market, symbols=SYMBOLS, trades_per_second_per_symbol=40, seed=9
    )
    async with ExchangeSimulator(config) as sim:
        settings = GatewaySettings(
            gateway_id="books-test",
            binance={"markets": {market: {
                "symbols": SYMBOLS, "channels": ["depth@100ms"],
                "stream_url": sim.ws_url, "rest_url": sim.rest_url, "book_snapshot_interval_s": 1.0,
            }}},
            kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix, "partitions": 2},
            status={"enabled": False},
        )  # fmt: skip
        running = RunningGateway(settings)
        await running.wait_connected()
        await asyncio.sleep(1.5)
        sim.inject("depth_gap", symbol="BTCUSDT")  # diffs lost: the gateway must notice and resync
        await asyncio.sleep(2.0)
        sim.pause()
        await sim.wait_idle(timeout_s=10)
        await asyncio.sleep(0.6)  # the last 100 ms diff batch
        expected = {s: await exchange_book(sim.rest_url, market, s) for s in SYMBOLS}
        await running.stop()
        acked = running.gateway.sink.stats.acked
    assert running.gateway.metrics.book_resyncs.labels(market).get() >= 1

    snapshots_topic = f"{topic_prefix}.{market}.book_snapshot"
    diffs_topic = f"{topic_prefix}.{market}.depth_update"
    records = await read_all(
        [snapshots_topic, diffs_topic], bootstrap_servers=kafka_bootstrap, expected=acked
    )
    assert len(records) == acked
    snapshots = [r for r in records if r.topic == snapshots_topic]
    assert {r.value["reason"] for r in snapshots} >= {"initial", "gap"}
    rebuilder = BookRebuilder(market)
    for record in snapshots:
        rebuilder.add_snapshot(record.value)
    for record in sorted(
        (r for r in records if r.topic == diffs_topic), key=lambda r: (r.partition, r.offset)
    ):
        rebuilder.add_diff(record.value)
    assert rebuilder.gaps >= 1  # the consumer saw the hole too, and bridged it with a snapshot
    for symbol in SYMBOLS:
        book = rebuilder.book(symbol)
        assert book is not None, symbol
        assert (book.bids, book.asks) == expected[symbol], symbol
