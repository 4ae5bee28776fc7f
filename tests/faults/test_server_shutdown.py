"""``serverShutdown``: the gateway switches connections make-before-break; no trade lost or repeated.

Binance sends ``serverShutdown`` before it closes a connection for maintenance (docs/binance.md §2).
The simulator sends it on every open connection and closes them (1001) a moment later; the
gateway must open the successor and overlap before that close, so the switch is a rotation, not
a reconnect, and Kafka holds every trade the simulator made exactly once, in order.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator
from tests.faults.rotation_support import published, switching_settings
from tests.integration.accounts_support import eventually
from tests.integration.conftest import RunningGateway

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SYMBOLS = ("BTCUSDT", "ETHUSDT")
SHUTDOWNS = 3
CLOSE_AFTER_S = 5.0  # between the notice and the server's close; the overlap must fit in it


async def test_server_shutdown_switches_make_before_break(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    config = SimulatorConfig(symbols=SYMBOLS, seed=37, trades_per_second_per_symbol=150)
    async with ExchangeSimulator(config) as sim:
        settings = switching_settings(
            sim, gateway_id="shutdown-test", symbols=SYMBOLS,
            channels=["trade", "aggTrade", "depth@100ms"],
            rotate_after_s=3600.0,  # no scheduled rotation: only serverShutdown switches
            handover_timeout_s=2.0, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix,
        )  # fmt: skip
        running = RunningGateway(settings)
        await running.wait_connected()
        [connection] = running.clients
        for done in range(1, SHUTDOWNS + 1):
            await asyncio.sleep(1.0)  # trades flow on the current connection first
            sim.inject("server_shutdown", close_after_s=CLOSE_AFTER_S)

            def rotated(times: int = done) -> bool:
                return connection.rotations >= times

            await eventually(rotated, timeout_s=CLOSE_AFTER_S)
            # Let the server's close of the replaced connection happen while trades flow.
            await asyncio.sleep(CLOSE_AFTER_S)
        sim.pause()
        await sim.wait_idle(timeout_s=10)
        await asyncio.sleep(0.5)
        trades = {s: sim.history.trades(s) for s in SYMBOLS}
        opened = len(sim.connections())
        await running.stop()

    gateway = running.gateway
    assert connection.rotations == SHUTDOWNS  # each notice was one make-before-break switch
    assert connection.reconnects == 0  # never a break: the successor was up before the close
    assert opened == 1 + SHUTDOWNS
    assert gateway.metrics.backfilled.labels("spot", "trade").get() == 0  # no hole

    by_topic_key = await published(gateway, kafka_bootstrap)
    for symbol in SYMBOLS:
        got = [t["trade_id"] for t in by_topic_key[("trade", symbol)]]
        sent = [t["t"] for t in trades[symbol] if t["t"] >= got[0]]
        assert len(sent) > 500  # trades flowed across every switch
        assert got == sent  # every trade the simulator made since the start, once, in order
        aggs = [a["agg_trade_id"] for a in by_topic_key[("agg_trade", symbol)]]
        assert aggs == list(range(aggs[0], aggs[0] + len(aggs)))  # no aggregate lost or repeated
        diffs = by_topic_key[("depth_update", symbol)]
        for previous, diff in itertools.pairwise(diffs):
            assert diff["first_update_id"] == previous["final_update_id"] + 1  # no gap, no repeat
