"""Kafka down for a minute under a steady stream of every public kind, spot and USDⓈ-M: memory
stays bounded, and afterwards every record kind is delivered exactly once, recovered from REST, or
declared on the status topic with a window covering the hole.

The readers wait behind the stalled sink, and the simulator, like Binance, does not wait for them:
a connection whose send buffer overflows (or that misses the ping deadline) is cut, and what the
exchange published meanwhile is a hole the gateway must recover or declare.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import psutil
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
OUTAGE_S = float(os.environ.get("GATEWAY_TEST_KAFKA_OUTAGE_S", "60"))
QUEUE_CAP = 2_000
SPOT_CHANNELS = [
    "trade", "aggTrade", "bookTicker", "depth@100ms", "depth5@100ms",
    "kline_1m", "ticker", "miniTicker", "avgPrice",
]  # fmt: skip
USDM_CHANNELS = [
    "aggTrade", "bookTicker", "depth@100ms", "markPrice@1s", "forceOrder",
    "continuousKline_1m", "kline_1m", "miniTicker",
]  # fmt: skip
S = 1_000_000
# Kline streams whose closed candles are recovered: (market, kind) -> (stream, REST path, params).
KLINES = {
    ("spot", "kline"): ("{}@kline_1m", "/api/v3/klines", {"symbol": "{}"}),
    ("usdm", "kline"): ("{}@kline_1m", "/fapi/v1/klines", {"symbol": "{}"}),
    ("usdm", "continuous_kline"): (
        "{}_perpetual@continuousKline_1m",
        "/fapi/v1/continuousKlines",
        {"pair": "{}", "contractType": "PERPETUAL"},
    ),
}
# After Kafka returns, the readers first publish what waited in the sockets (sent before the
# cut) before the reconnect; a receive-dated kind's window starts once they caught up.
CATCH_UP_US = 30 * S
# Kinds whose lost windows are declared (trades are recovered by id, depth diffs by resync;
# klines' closed candles are recovered from REST too, KLINES below):
# kind -> (stream of a symbol, the longest pause its cadence allows by luck, µs).
DECLARED = {
    "spot": {
        "kline": ("{}@kline_1m", 3 * S), "ticker": ("{}@ticker", 3 * S),
        "mini_ticker": ("{}@miniTicker", 3 * S), "book_ticker": ("{}@bookTicker", 3 * S),
        "depth_snapshot": ("{}@depth5@100ms", 3 * S), "avg_price": ("{}@avgPrice", 3 * S),
    },
    "usdm": {
        "kline": ("{}@kline_1m", 3 * S), "continuous_kline": ("{}_perpetual@continuousKline_1m", 3 * S),
        "mark_price": ("{}@markPrice@1s", 3 * S), "mini_ticker": ("{}@miniTicker", 5 * S),
        "book_ticker": ("{}@bookTicker", 5 * S),
        # One liquidation a second at most, here with probability 0.9: 15 s without one by
        # luck has a chance of 1e-15.
        "force_order": ("{}@forceOrder", 15 * S),
    },
}  # fmt: skip


async def test_a_minute_without_kafka_loses_nothing_and_stays_bounded(
    kafka_cluster_factory: Callable[..., KafkaCluster], topic_prefix: str
) -> None:
    cluster = await asyncio.to_thread(kafka_cluster_factory, nodes=1)
    # Binance's ping deadline (spot: a ping every 20 s, no pong within 60 s closes; futures 3
    # and 10 min) scaled down, so the outage surely outlasts it and every connection is cut.
    pings = {"ping_interval_s": 2.0, "ping_timeout_s": 10.0}
    spot_config = SimulatorConfig(
        symbols=SYMBOLS, seed=33, trades_per_second_per_symbol=40, start_paused=True, **pings
    )
    usdm_config = SimulatorConfig(
        market="usdm", symbols=SYMBOLS, seed=34, trades_per_second_per_symbol=20,
        start_paused=True, liquidation_probability=0.9, **pings,
    )  # fmt: skip
    async with ExchangeSimulator(spot_config) as spot, ExchangeSimulator(usdm_config) as usdm:
        sims = {"spot": spot, "usdm": usdm}
        settings = GatewaySettings(
            gateway_id="outage-test",
            binance={"markets": {
                "spot": {"symbols": SYMBOLS, "channels": SPOT_CHANNELS, "shards": 1,
                         "stream_url": spot.ws_url, "rest_url": spot.rest_url},
                "usdm": {"symbols": SYMBOLS, "channels": USDM_CHANNELS, "shards": 1,
                         "stream_url": usdm.ws_url, "rest_url": usdm.rest_url},
            }},
            kafka={"bootstrap_servers": cluster.bootstrap_servers, "topic_prefix": topic_prefix,
                   "max_buffered_records": QUEUE_CAP},
            status={"enabled": False},
        )  # fmt: skip
        running = RunningGateway(settings)
        await running.wait_connected()
        await spot.wait_for_subscribers(len(SYMBOLS) * len(SPOT_CHANNELS), timeout_s=10)
        await usdm.wait_for_subscribers(len(SYMBOLS) * len(USDM_CHANNELS), timeout_s=10)
        spot.resume()
        usdm.resume()
        await running.wait_acked(500)
        connections = list(running.gateway.connections)
        process = psutil.Process()
        rss_before = process.memory_info().rss

        acked_before = running.gateway.sink.stats.acked
        await asyncio.to_thread(cluster.stop_node, 0)
        peak_queue, peak_rss = 0, rss_before
        for _ in range(int(OUTAGE_S * 4)):
            await asyncio.sleep(0.25)
            peak_queue = max(peak_queue, running.gateway.sink.queue_depth)
            peak_rss = max(peak_rss, process.memory_info().rss)
        acked_during = running.gateway.sink.stats.acked
        await asyncio.to_thread(cluster.start_node, 0)

        async with asyncio.timeout(90):  # every connection streams again (cut ones reconnected)
            while not all(c.connected.is_set() for c in running.gateway.connections):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await asyncio.sleep(5)  # every stream delivers again, ending its declared window
        spot.pause()
        usdm.pause()
        await asyncio.gather(spot.wait_idle(timeout_s=30), usdm.wait_idle(timeout_s=30))
        candles = {
            (market, kind, symbol): await exchange_candles(
                sims[market].rest_url, path, {k: v.format(symbol) for k, v in params.items()}
            )
            for (market, kind), (_, path, params) in KLINES.items()
            for symbol in SYMBOLS
        }
        truth = {
            (market, kind): {s: [t[field] for t in history(s)] for s in SYMBOLS}
            for market, sim in sims.items()
            for kind, field, history in (
                ("trade", "t", sim.history.trades),
                ("agg_trade", "a", sim.history.agg_trades),
            )
            if market == "spot" or kind == "agg_trade"
        }
        trade_topics = [f"{topic_prefix}.{market}.{kind}" for market, kind in truth]
        expected = sum(len(ids) for by_symbol in truth.values() for ids in by_symbol.values())
        acked = running.gateway.metrics.records_acked
        async with asyncio.timeout(120):  # every trade, live or backfilled, is in Kafka
            while sum(acked.labels(t).get() for t in trade_topics) < expected:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # the liveness loop sends what it declared
        await running.stop()

    # A few records in flight when the broker stopped may be acknowledged; a minute's worth not.
    assert acked_during - acked_before < QUEUE_CAP // 4, "Kafka was not down"
    assert peak_queue <= QUEUE_CAP
    assert peak_rss - rss_before < 64 * 1024 * 1024  # bounded: no unbounded buffering
    assert running.gateway.sink.stats.failed == 0
    reconnects = {c.name: c.reconnects for c in connections}
    assert all(reconnects.values()), reconnects  # the simulator cut every reader that stopped

    records = await read_all(
        trade_topics, bootstrap_servers=cluster.bootstrap_servers, expected=expected, settle_s=2
    )
    others = [f"{topic_prefix}.{market}.{kind}"
              for market, kinds in DECLARED.items() for kind in (*kinds, "book_snapshot")]  # fmt: skip
    others.append(f"{topic_prefix}.stream_status")
    acked_others = sum(running.gateway.metrics.records_acked.labels(t).get() for t in others)
    records += await read_all(
        others, bootstrap_servers=cluster.bootstrap_servers, expected=int(acked_others), settle_s=2
    )
    grouped = by_group_and_kind(records)

    # Trades and aggregate trades: every id the exchange made, exactly once (live or backfilled).
    for (market, kind), by_symbol in truth.items():
        id_field = "trade_id" if kind == "trade" else "agg_trade_id"
        assert_ids_exactly_once(grouped[market, kind], id_field, by_symbol)
    status = grouped["", "stream_status"]
    for market, kinds in DECLARED.items():
        # Depth diffs: the connection carrying them was cut, and the books were resynced
        # (USDⓈ-M's ride its /public route).
        if any(n for name, n in reconnects.items() if name.startswith(market)
               and (market == "spot" or "-public" in name)):  # fmt: skip
            assert_resynced(grouped[market, "book_snapshot"], SYMBOLS)
        # Every other kind: each pause longer than its cadence lies in a declared window.
        windows = gap_windows(status, market)
        for kind, (template, pause_us) in kinds.items():
            for symbol in SYMBOLS:
                stream = template.format(symbol.lower())
                values = [v for v in grouped[market, kind] if v["_key"] == symbol]
                holes = assert_pauses_declared(
                    stream, values, windows[stream], pause_us, late_us=CATCH_UP_US
                )
                assert holes, f"{stream}: no hole, so nothing proved"  # every connection was cut
    # Klines: every candle that closed in a hole was recovered from REST, each closed once; a
    # minute's outage (or longer) holds at least one candle close per stream.
    for (market, kind), (template, _, _) in KLINES.items():
        for symbol in SYMBOLS:
            stream = template.format(symbol.lower())
            values = [v for v in grouped[market, kind] if v["_key"] == symbol]
            recovered = assert_klines_recovered(
                stream, market, values, status, candles[market, kind, symbol]
            )
            assert recovered or OUTAGE_S < 60, f"{stream}: no candle recovered, nothing proved"
