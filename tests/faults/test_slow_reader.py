"""The gateway as a slow reader: Kafka stalls, the readers wait behind it, and the simulator
(like Binance) does not wait for them: the connection is cut at the ping deadline. Afterwards
every record kind is delivered exactly once, recovered, or declared with its window."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gateway.consumers.reader import read_all
from gateway.infra.kafka import KafkaCluster
from gateway.settings import GatewaySettings
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator
from tests.faults.windows import (
    assert_ids_exactly_once,
    assert_klines_recovered,
    assert_pauses_declared,
    assert_resynced,
    by_group_and_kind,
    exchange_candles,
    gap_windows,
)
from tests.integration.conftest import RunningGateway

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SYMBOLS = ("BTCUSDT", "ETHUSDT")
CHANNELS = [
    "trade", "aggTrade", "bookTicker", "depth@100ms", "depth5@100ms",
    "kline_1m", "ticker", "miniTicker", "avgPrice",
]  # fmt: skip
# Kinds whose lost windows are declared (trades are recovered by id, depth diffs by resync,
# klines' closed candles from REST klines: their window is declared too).
DECLARED = {
    "kline": "kline_1m", "ticker": "ticker", "mini_ticker": "miniTicker",
    "book_ticker": "bookTicker", "depth_snapshot": "depth5@100ms", "avg_price": "avgPrice",
}  # fmt: skip
STALL_S = 25.0
PAUSE_US = 3_000_000  # longer than any of these streams' cadence (at most 2 s)


async def test_a_slow_reader_is_cut_and_every_window_is_recovered_or_declared(
    kafka_cluster_factory: Callable[..., KafkaCluster], topic_prefix: str
) -> None:
    cluster = await asyncio.to_thread(kafka_cluster_factory, nodes=1)
    config = SimulatorConfig(
        symbols=SYMBOLS, seed=41, trades_per_second_per_symbol=40, start_paused=True,
        # Binance spot: a ping every 20 s, no pong within 60 s closes; scaled down here.
        ping_interval_s=1.0, ping_timeout_s=3.0,
    )  # fmt: skip
    async with ExchangeSimulator(config) as sim:
        settings = GatewaySettings(
            gateway_id="slow-reader",
            binance={"markets": {"spot": {
                "symbols": SYMBOLS, "channels": CHANNELS, "shards": 1,
                "stream_url": sim.ws_url, "rest_url": sim.rest_url,
            }}},
            kafka={"bootstrap_servers": cluster.bootstrap_servers, "topic_prefix": topic_prefix,
                   "max_buffered_records": 1_000, "max_batch_bytes": 16_384},
            status={"enabled": False},
            coordination={"enabled": False},  # the stream is under test here, not the group
        )  # fmt: skip
        running = RunningGateway(settings)
        await running.wait_connected()
        [connection] = running.gateway.connections
        await sim.wait_for_subscribers(len(SYMBOLS) * len(CHANNELS), timeout_s=10)
        sim.resume()
        await running.wait_acked(500)

        await asyncio.to_thread(cluster.stop_node, 0)  # the readers soon wait behind Kafka
        await asyncio.sleep(STALL_S)
        await asyncio.to_thread(cluster.start_node, 0)
        async with asyncio.timeout(60):
            while connection.reconnects == 0 or not connection.connected.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await asyncio.sleep(5)  # the new connection delivers every stream again
        sim.pause()
        await sim.wait_idle(timeout_s=30)
        candles = {s: await exchange_candles(sim.rest_url, "/api/v3/klines", {"symbol": s})
                   for s in SYMBOLS}  # fmt: skip
        trades = {s: sim.history.trades(s) for s in SYMBOLS}
        aggs = {s: sim.history.agg_trades(s) for s in SYMBOLS}
        expected = sum(map(len, trades.values())) + sum(map(len, aggs.values()))
        acked = running.gateway.metrics.records_acked
        trade_topics = [f"{topic_prefix}.spot.trade", f"{topic_prefix}.spot.agg_trade"]
        async with asyncio.timeout(120):  # every trade, live or backfilled, is in Kafka
            while sum(acked.labels(t).get() for t in trade_topics) < expected:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # the liveness loop sends what it declared
        await running.stop()

    assert running.gateway.sink.stats.failed == 0
    assert connection.reconnects >= 1  # the simulator cut the reader that did not keep up
    records = await read_all(
        trade_topics, bootstrap_servers=cluster.bootstrap_servers, expected=expected, settle_s=2
    )
    others = [f"{topic_prefix}.spot.{kind}" for kind in (*DECLARED, "book_snapshot")]
    others.append(f"{topic_prefix}.stream_status")
    acked_others = sum(running.gateway.metrics.records_acked.labels(t).get() for t in others)
    records += await read_all(
        others, bootstrap_servers=cluster.bootstrap_servers, expected=int(acked_others), settle_s=2
    )
    grouped = by_group_and_kind(records)

    # Trades and aggregate trades: every id exactly once (backfilled over the hole).
    assert_ids_exactly_once(grouped["spot", "trade"], "trade_id", {
        s: [t["t"] for t in trades[s]] for s in SYMBOLS})  # fmt: skip
    assert_ids_exactly_once(grouped["spot", "agg_trade"], "agg_trade_id", {
        s: [a["a"] for a in aggs[s]] for s in SYMBOLS})  # fmt: skip
    # Depth diffs: the book was resynced after the hole.
    assert_resynced(grouped["spot", "book_snapshot"], SYMBOLS)
    # Every other kind: each pause longer than its cadence lies inside a declared window.
    windows = gap_windows(grouped["", "stream_status"], "spot")
    assert windows, "the reconnect declared nothing"
    for kind, channel in DECLARED.items():
        for symbol in SYMBOLS:
            stream = f"{symbol.lower()}@{channel}"
            assert windows[stream], f"{stream}: no declared window"
            values = [v for v in grouped["spot", kind] if v["_key"] == symbol]
            assert_pauses_declared(stream, values, windows[stream], PAUSE_US)
    # Klines: each candle that closed in a hole was recovered from REST, and closed only once.
    for symbol in SYMBOLS:
        stream = f"{symbol.lower()}@kline_1m"
        values = [v for v in grouped["spot", "kline"] if v["_key"] == symbol]
        assert_klines_recovered(
            stream, "spot", values, grouped["", "stream_status"], candles[symbol]
        )
