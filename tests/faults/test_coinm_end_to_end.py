"""COIN-M end to end: a COIN-M exchange, the gateway, a real Kafka; per-symbol and pair-keyed
streams reach their topics, trades and aggregate trades lost to a gap and a dropped socket are
backfilled exactly once, and the books rebuilt from Kafka equal the exchange's.

The simulator is the oracle: what it recorded (``history``) and what its REST depth says at the
end are compared with what Kafka holds.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal

import pytest

from gateway.consumers.book_rebuilder import BookRebuilder
from gateway.consumers.reader import ConsumedRecord, read_all
from gateway.settings import GatewaySettings
from gateway.simulator.markets import Market
from tests.faults.books_support import exchange_book
from tests.integration.conftest import RunningGateway, SimulatorFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SYMBOLS = ("BTCUSD_PERP", "ETHUSD_PERP")
PAIRS = {"BTCUSD", "ETHUSD"}
TRADES = 900
KEY = "coinm-market-data-key"
CHANNELS = [
    "trade", "aggTrade", "depth@100ms", "kline_1m", "markPrice@1s", "markPriceKline_1m",
    "indexPrice@1s", "indexPriceKline_1m", "continuousKline_1m",
]  # fmt: skip


def by_topic_and_key(
    records: list[ConsumedRecord],
) -> dict[tuple[str, str | None], list[ConsumedRecord]]:
    grouped: dict[tuple[str, str | None], list[ConsumedRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        grouped[(record.topic.rsplit(".", 1)[-1], record.key)].append(record)
    return grouped


async def test_coinm_streams_backfills_and_books_end_to_end(
    simulator_factory: SimulatorFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    sim = await simulator_factory(
        market=Market.COINM, symbols=SYMBOLS, seed=11, trades_per_second_per_symbol=250,
        max_trades_per_symbol=TRADES, start_paused=True, api_keys={KEY: "unused-secret"},
    )  # fmt: skip
    settings = GatewaySettings(
        gateway_id="coinm-e2e",
        binance={"markets": {"coinm": {
            "symbols": SYMBOLS, "channels": CHANNELS, "market_wide": ["!contractInfo"],
            "stream_url": sim.ws_url, "rest_url": sim.rest_url, "api_key": KEY,
            "book_snapshot_interval_s": 1.0,
        }}},
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix, "partitions": 3},
        status={"enabled": False},
        log={"level": "INFO", "json": False},
    )  # fmt: skip
    running = RunningGateway(settings)
    await running.wait_connected()
    await sim.wait_for_subscribers(1, timeout_s=10)
    sim.resume()
    await asyncio.sleep(0.5)
    sim.inject("gap", symbol="BTCUSD_PERP", count=25)  # recorded by the exchange, never streamed
    sim.inject("depth_gap", symbol="ETHUSD_PERP")  # a lost diff: the book must resync
    await asyncio.sleep(0.5)
    sim.inject("drop")  # the socket dies; trades keep happening while the gateway reconnects
    await sim.wait_idle(timeout_s=60)
    await asyncio.sleep(2.5)  # a last index price, kline and book snapshot at their 1 s pace
    books = {s: await exchange_book(sim.rest_url, "coinm", s) for s in SYMBOLS}

    trades = {s: sim.history.trades(s) for s in SYMBOLS}
    aggs = {s: sim.history.agg_trades(s) for s in SYMBOLS}
    expected_trades = sum(map(len, trades.values())) + sum(map(len, aggs.values()))
    trade_topics = [f"{topic_prefix}.coinm.trade", f"{topic_prefix}.coinm.agg_trade"]
    trade_records = await read_all(
        trade_topics, bootstrap_servers=kafka_bootstrap, expected=expected_trades, settle_s=1.5
    )
    await running.stop()
    metrics = running.gateway.metrics
    acked = running.gateway.sink.stats.acked

    # Trades and aggregate trades: every one the exchange recorded, once, in order, exact.
    assert len(trade_records) == expected_trades
    grouped = by_topic_and_key(trade_records)
    backfilled = 0
    for symbol in SYMBOLS:
        got = grouped[("trade", symbol)]
        assert [r.value["trade_id"] for r in got] == [t["t"] for t in trades[symbol]]
        for record, sent in zip(got, trades[symbol], strict=True):
            assert record.value["price"] == Decimal(sent["p"])
            assert record.value["quantity"] == Decimal(sent["q"])
            assert record.value["trade_type"] == sent["X"] == "MARKET"
            assert record.value["buyer_is_maker"] is sent["m"]
            backfilled += record.headers.get("backfilled") == "1"
        got_aggs = grouped[("agg_trade", symbol)]
        assert [r.value["agg_trade_id"] for r in got_aggs] == [a["a"] for a in aggs[symbol]]
    assert backfilled >= 25  # at least the withheld trades came from REST, by id (with the key)
    assert metrics.backfilled.labels("coinm", "agg_trade").get() >= 1
    assert metrics.trade_gaps.labels("coinm", "trade").get() == 0
    assert metrics.trade_gaps.labels("coinm", "agg_trade").get() == 0

    # Everything else the gateway published, by topic.
    rest = await read_all(
        [f"{topic_prefix}.coinm.{kind}" for kind in (
            "book_snapshot", "depth_update", "kline", "mark_price", "mark_price_kline",
            "index_price", "index_price_kline", "continuous_kline", "contract_info",
        )] + [f"{topic_prefix}.dead_letter", f"{topic_prefix}.stream_status"],
        bootstrap_servers=kafka_bootstrap, expected=acked - expected_trades,
    )  # fmt: skip
    assert len(rest) == acked - expected_trades
    kinds = defaultdict(list)
    for record in rest:
        kinds[record.topic.rsplit(".", 1)[-1]].append(record)
    assert kinds["dead_letter"] == []

    # Pair-keyed streams reach their topics keyed by pair; per-symbol ones by symbol.
    for kind in ("index_price", "index_price_kline", "continuous_kline"):
        assert {r.key for r in kinds[kind]} == PAIRS, kind
        assert all(r.value["pair"] == r.key for r in kinds[kind]), kind
    assert {r.value["contract_type"] for r in kinds["continuous_kline"]} == {"PERPETUAL"}
    for kind in ("kline", "mark_price", "mark_price_kline"):
        assert {r.key for r in kinds[kind]} == set(SYMBOLS), kind
    assert kinds["contract_info"] == [] or {r.key for r in kinds["contract_info"]} <= set(SYMBOLS)

    # Books rebuilt from book_snapshot + depth_update alone equal the exchange's.
    assert metrics.book_resyncs.labels("coinm").get() >= 1
    rebuilder = BookRebuilder("coinm")
    for record in kinds["book_snapshot"]:
        rebuilder.add_snapshot(record.value)
    for record in sorted(kinds["depth_update"], key=lambda r: (r.partition, r.offset)):
        rebuilder.add_diff(record.value)
    for symbol in SYMBOLS:
        book = rebuilder.book(symbol)
        assert book is not None, symbol
        assert (book.bids, book.asks) == books[symbol], symbol
