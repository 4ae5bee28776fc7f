"""The gateway as a slow reader: Kafka stalls, the readers wait behind it, and the simulator
(like Binance) does not wait for them: the connection is cut at the ping deadline. Afterwards
every record kind is delivered exactly once, recovered, or declared with its window."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from datetime import datetime

import pytest

from gateway.consumer import ConsumedRecord, read_all
from gateway.settings import GatewaySettings
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator
from tests.integration.conftest import RunningGateway

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SYMBOLS = ("BTCUSDT", "ETHUSDT")
CHANNELS = [
    "trade", "aggTrade", "bookTicker", "depth@100ms", "depth5@100ms",
    "kline_1m", "ticker", "miniTicker", "avgPrice",
]  # fmt: skip
# Kinds whose lost windows are declared (trades are recovered by id, depth diffs by resync).
DECLARED = {
    "kline": "kline_1m", "ticker": "ticker", "mini_ticker": "miniTicker",
    "book_ticker": "bookTicker", "depth_snapshot": "depth5@100ms", "avg_price": "avgPrice",
}  # fmt: skip
STALL_S = 25.0
PAUSE_US = 3_000_000  # longer than any of these streams' cadence (at most 2 s)


def us(value: datetime | None) -> int | None:
    """A decoded timestamp-micros as epoch microseconds."""
    return None if value is None else round(value.timestamp() * 1_000_000)


async def test_a_slow_reader_is_cut_and_every_window_is_recovered_or_declared(
    kafka_cluster_factory, topic_prefix
):
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
    acked = sum(running.gateway.metrics.records_acked.labels(t).get() for t in others)
    records += await read_all(
        others, bootstrap_servers=cluster.bootstrap_servers, expected=int(acked), settle_s=2
    )
    by_topic: dict[str, list[ConsumedRecord]] = defaultdict(list)
    for record in records:
        by_topic[record.topic.rsplit(".", 1)[1]].append(record)

    # Trades and aggregate trades: every id exactly once (backfilled over the hole).
    for symbol in SYMBOLS:
        got = sorted(r.value["trade_id"] for r in by_topic["trade"] if r.key == symbol)
        assert got == [t["t"] for t in trades[symbol]]
        got = sorted(r.value["agg_trade_id"] for r in by_topic["agg_trade"] if r.key == symbol)
        assert got == [a["a"] for a in aggs[symbol]]
    # Depth diffs: the book was resynced after the hole.
    for symbol in SYMBOLS:
        reasons = [r.value["reason"] for r in by_topic["book_snapshot"] if r.key == symbol]
        assert "gap" in reasons, {k: len(v) for k, v in by_topic.items()}
    # Every other kind: each pause longer than its cadence lies inside a declared window, in
    # the stream's own time (Binance's event time). Kinds Binance sends without one (spot book
    # tickers, partial books) are dated on receipt, and frames that waited behind the stalled
    # sink carry late receive times: their window starts after those late frames.
    gaps = [r.value for r in by_topic["stream_status"] if r.value["status"] == "gap"]
    assert gaps, "the reconnect declared nothing"
    for kind, channel in DECLARED.items():
        for symbol in SYMBOLS:
            stream = f"{symbol.lower()}@{channel}"
            values = [r.value for r in by_topic[kind] if r.key == symbol]
            dated = values[0].get("event_time_us") is not None  # as the record's own time
            field = "event_time_us" if dated else "received_at_us"
            times = sorted(us(v[field]) for v in values)
            assert len(times) > 5, stream
            # A record twice would be the same event (a kline's close and the next candle's
            # first update share an event time, not an open time).
            keys = [
                (v[field], v.get("open_time_us"), v.get("update_id", v.get("last_update_id")))
                for v in values
            ]
            assert len(set(keys)) == len(keys), f"{stream}: a record twice"
            windows = [(us(g["window_start_us"]), us(g["window_end_us"])) for g in gaps
                       if g["stream"] == stream]  # fmt: skip
            assert windows, f"{stream}: no declared window"
            for before, after in itertools.pairwise(times):
                if after - before <= PAUSE_US:
                    continue
                if field == "event_time_us":
                    covered = any(s <= before and e >= after for s, e in windows)
                else:
                    covered = any(before <= s <= after + PAUSE_US for s, _ in windows)
                assert covered, f"{stream}: silence {before}..{after} not declared in {windows}"
