"""A stream that goes silent while the socket stays up is treated as dead, and nothing is lost."""

from __future__ import annotations

import asyncio

import pytest

from gateway.consumers.reader import read_all
from tests.integration.conftest import RunningGateway, SimulatorFactory, gateway_settings

pytestmark = [pytest.mark.kafka]

SYMBOLS = ("BTCUSDT",)


async def test_a_stalled_connection_is_replaced_and_the_silence_backfilled(
    simulator_factory: SimulatorFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    sim = await simulator_factory(
        symbols=SYMBOLS, seed=8, trades_per_second_per_symbol=200,
        max_trades_per_symbol=800, start_paused=True,
    )  # fmt: skip
    settings = gateway_settings(
        sim, symbols=SYMBOLS, kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix, registry_url=None,
    )  # fmt: skip
    settings = settings.model_copy(
        update={"binance": settings.binance.model_copy(update={"stale_after_s": 1.0})}
    )
    running = RunningGateway(settings)
    await running.wait_connected()
    [connection] = running.gateway.connections
    await sim.wait_for_subscribers(2, timeout_s=10)
    sim.resume()
    await asyncio.sleep(0.5)
    sim.inject("stall")  # open, answering pings, sending nothing
    await sim.wait_idle(timeout_s=30)
    trades, aggs = sim.history.trades("BTCUSDT"), sim.history.agg_trades("BTCUSDT")
    await running.wait_acked(len(trades) + len(aggs), timeout_s=30)
    await running.stop()

    assert connection.reconnects >= 1
    records = await read_all(
        [f"{topic_prefix}.spot.trade"], bootstrap_servers=kafka_bootstrap, expected=len(trades)
    )
    assert [r.value["trade_id"] for r in sorted(records, key=lambda r: r.offset)] == [
        t["t"] for t in trades
    ]
    assert sum(r.headers.get("backfilled") == "1" for r in records) > 0
