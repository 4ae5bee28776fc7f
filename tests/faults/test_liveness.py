"""Every stream proves it delivers: a stream Binance accepts and never serves is reported
(metric, log, readiness, status record), and a connection of quiet symbols is left alone."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from gateway.consumers.reader import read_all
from tests.integration.conftest import RunningGateway, SimulatorFactory, gateway_settings

pytestmark = [pytest.mark.kafka]

SYMBOLS = ("BTCUSDT", "ETHUSDT")
DEAD = "btcusdt@kline_1m"
REPORT_S = 10.0


async def test_a_stream_never_served_is_reported_and_a_quiet_connection_is_kept(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.runtime.liveness")
    # Quiet symbols: one trade each every 5 s, klines every 4 s (Binance: 2 s).
    sim = await simulator_factory(
        symbols=SYMBOLS, seed=14, trades_per_second_per_symbol=0.2, update_interval_scale=2
    )
    sim.never_serve(DEAD)  # accepted, listed, never a frame: a retired or misrouted name
    settings = gateway_settings(
        sim, symbols=SYMBOLS, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix,
        registry_url=None, channels=["aggTrade", "kline_1m"], shards=1,
    )  # fmt: skip
    # The old rule (one 1 s timer per connection) would replace this connection every few
    # seconds; its streams' own paces allow far longer.
    settings = settings.model_copy(
        update={
            "binance": settings.binance.model_copy(
                update={"stale_after_s": 1.0, "silent_stream_report_s": REPORT_S}
            )
        }
    )
    running = RunningGateway(settings)
    started = time.monotonic()
    await running.wait_connected()
    [connection] = running.gateway.connections
    metrics = running.gateway.metrics

    async with asyncio.timeout(REPORT_S + 30):
        while not running.gateway.readiness()[1]["silent_streams"]:  # noqa: ASYNC110 - its state
            await asyncio.sleep(0.1)
    reported_after = time.monotonic() - started
    ready, details = running.gateway.readiness()
    assert details["silent_streams"] == {"spot": [DEAD]}
    assert ready  # a silent stream is a finding, not a reason to take the worker out
    assert metrics.stream_silences.labels("spot", "kline_1m").get() == 1
    assert metrics.registry.get_sample_value("gateway_silent_streams", {"market": "spot"}) == 1
    assert [r for r in caplog.records if DEAD in r.getMessage() and "silent" in r.getMessage()]

    await asyncio.sleep(20)  # quiet, within cadence: nobody is replaced, nothing else reported
    assert connection.reconnects == 0
    assert details["silent_streams"] == running.gateway.readiness()[1]["silent_streams"]
    await running.stop()

    records = await read_all(
        [f"{topic_prefix}.stream_status"], bootstrap_servers=kafka_bootstrap, expected=1
    )
    # The stop releases the shard: its served fixed-cadence streams declare an open window then
    # (docs/liveness.md). Before it, the dead stream's report is the only status record.
    silent = [r for r in records if r.value["status"] != "gap"]
    assert [(r.key, r.value["stream"], r.value["status"]) for r in silent] == [
        ("BTCUSDT", DEAD, "silent")
    ]
    gaps = [r for r in records if r.value["status"] == "gap"]
    assert all(r.value["stream"] != DEAD and r.value["window_end_us"] is None for r in gaps), [
        (r.value["stream"], r.value["window_end_us"]) for r in gaps
    ]
    [status] = silent
    assert status.value["window_start_us"] is None  # nothing since subscription
    assert status.value["reason"] == "never delivered since subscription"
    assert status.value["expected_silence_ms"] == REPORT_S * 1_000
    assert REPORT_S <= reported_after < REPORT_S + 30


async def test_a_quiet_symbols_hole_is_probed_after_the_reconnect(
    simulator_factory: SimulatorFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    sim = await simulator_factory(
        symbols=("BTCUSDT",), seed=15, trades_per_second_per_symbol=50, start_paused=True
    )
    settings = gateway_settings(
        sim, symbols=("BTCUSDT",), kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix,
        registry_url=None, shards=1,
    )  # fmt: skip
    settings = settings.model_copy(
        update={"binance": settings.binance.model_copy(update={"stale_after_s": 2.0})}
    )
    running = RunningGateway(settings)
    await running.wait_connected()
    [connection] = running.gateway.connections
    await sim.wait_for_subscribers(2, timeout_s=10)
    sim.run_for(trades_per_symbol=200)
    await sim.wait_idle(timeout_s=30)
    sim.inject("stall")  # open, silent: what trades now is never sent on it
    sim.run_for(trades_per_symbol=30)
    await sim.wait_idle(timeout_s=30)  # ...and then the market goes quiet
    trades, aggs = sim.history.trades("BTCUSDT"), sim.history.agg_trades("BTCUSDT")
    # The silent connection is replaced; no live trade ever shows the hole: the probe does.
    await running.wait_acked(len(trades) + len(aggs), timeout_s=60)
    await running.stop()

    assert connection.reconnects >= 1
    records = await read_all(
        [f"{topic_prefix}.spot.trade"], bootstrap_servers=kafka_bootstrap, expected=len(trades)
    )
    assert sorted(r.value["trade_id"] for r in records) == [t["t"] for t in trades]
    assert sum(r.headers.get("backfilled") == "1" for r in records) > 0
