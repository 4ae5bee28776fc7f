"""Several shards on one worker start together, each resuming from one shared read of Kafka.

A worker given eight shards claims them concurrently, opens them together and resumes all of
them from one scan of the trade topics (``LastIdReader`` serves calls made together with one
scan per market), so they stream within seconds of each other instead of one after another,
each after scanning what the earlier ones were already writing.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.adapters.kafka_tail import LastIdReader
from gateway.runtime.shards import ShardRunner
from gateway.simulator.config import simulated_symbols
from tests.integration.conftest import RunningGateway, SimulatorFactory, gateway_settings

pytestmark = [pytest.mark.kafka]

SHARDS = 8
SYMBOLS = simulated_symbols(40)
SPREAD_BOUND_S = 10.0
"""Generous for a shared 2-core machine; one after another took about 30 s with 8 shards."""


async def shard_start_times(running: RunningGateway, timeout_s: float = 60.0) -> dict[str, float]:
    """Seconds from now until each shard first streams (all its connections up)."""
    started = time.monotonic()
    starts: dict[str, float] = {}
    async with asyncio.timeout(timeout_s):
        while len(starts) < SHARDS:
            ownership = running.gateway.ownership
            for shard, unit in list(ownership.units.items()) if ownership else []:
                if shard not in starts and isinstance(unit, ShardRunner) and unit.streaming:
                    starts[shard] = time.monotonic() - started
            await asyncio.sleep(0.02)
    return starts


async def test_eight_shards_on_one_worker_start_together_from_one_read_of_kafka(
    simulator_factory: SimulatorFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    sim = await simulator_factory(symbols=SYMBOLS, seed=5, trades_per_second_per_symbol=50)
    settings = gateway_settings(
        sim, symbols=SYMBOLS, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix,
        registry_url=None, shards=SHARDS,
    )  # fmt: skip
    coordination = settings.coordination.model_copy(
        update={"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
    )
    settings = settings.model_copy(update={"coordination": coordination})

    first = RunningGateway(settings)  # fills the trade topics the second start resumes from
    await first.wait_connected(timeout_s=60)
    await first.wait_acked(4_000)
    await first.stop()

    second = RunningGateway(settings)
    starts = await shard_start_times(second)
    await second.wait_acked(first.gateway.sink.stats.acked + 1_000)
    tail = second.gateway.tail
    await second.stop()

    assert len(starts) == SHARDS
    spread = max(starts.values()) - min(starts.values())
    assert spread < SPREAD_BOUND_S, starts
    # Every shard resumed from Kafka, all from one scan of each trade topic's partitions,
    # which found every symbol's last trade and aggregate trade.
    assert isinstance(tail, LastIdReader)
    assert tail.scans == 1
    assert sum(len(scan.found) for scan in tail.last_scans.values()) == 2 * len(SYMBOLS)
