"""Kafka down for a minute under a steady stream: memory stays bounded and nothing is lost."""

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
from tests.integration.conftest import RunningGateway

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SYMBOLS = ("BTCUSDT", "ETHUSDT")
OUTAGE_S = float(os.environ.get("GATEWAY_TEST_KAFKA_OUTAGE_S", "60"))
QUEUE_CAP = 2_000


async def test_a_minute_without_kafka_loses_nothing_and_stays_bounded(
    kafka_cluster_factory: Callable[..., KafkaCluster], topic_prefix: str
) -> None:
    cluster = await asyncio.to_thread(kafka_cluster_factory, nodes=1)
    config = SimulatorConfig(
        symbols=SYMBOLS, seed=33, trades_per_second_per_symbol=40, start_paused=True
    )
    async with ExchangeSimulator(config) as sim:
        settings = GatewaySettings(
            gateway_id="outage-test",
            binance={"markets": {"spot": {
                "symbols": SYMBOLS, "stream_url": sim.ws_url, "rest_url": sim.rest_url,
            }}},
            kafka={"bootstrap_servers": cluster.bootstrap_servers, "topic_prefix": topic_prefix,
                   "max_buffered_records": QUEUE_CAP},
            status={"enabled": False},
        )  # fmt: skip
        running = RunningGateway(settings)
        await running.wait_connected()
        await sim.wait_for_subscribers(2 * len(SYMBOLS), timeout_s=10)
        sim.resume()
        await running.wait_acked(200)
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

        await asyncio.sleep(3)
        sim.pause()
        await sim.wait_idle(timeout_s=30)
        trades = {s: sim.history.trades(s) for s in SYMBOLS}
        aggs = {s: sim.history.agg_trades(s) for s in SYMBOLS}
        expected = sum(map(len, trades.values())) + sum(map(len, aggs.values()))
        await running.wait_acked(expected, timeout_s=90)
        await running.stop()

    assert acked_during - acked_before < 50  # Kafka really was down (a few in flight at most)
    assert peak_queue <= QUEUE_CAP
    assert peak_rss - rss_before < 64 * 1024 * 1024  # bounded: no unbounded buffering
    assert running.gateway.sink.stats.failed == 0
    records = await read_all(
        [f"{topic_prefix}.spot.trade", f"{topic_prefix}.spot.agg_trade"],
        bootstrap_servers=cluster.bootstrap_servers, expected=expected, settle_s=1.5,
    )  # fmt: skip
    assert len(records) == expected
    for symbol in SYMBOLS:
        got = sorted(
            r.value["trade_id"] for r in records if r.topic.endswith(".trade") and r.key == symbol
        )
        assert got == [t["t"] for t in trades[symbol]]  # every trade, exactly once
