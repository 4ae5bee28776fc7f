"""Scale-out figures for ``gateway bench``: throughput of 1, 2 and 3 worker processes, and the
time a ``kill -9`` takes to heal.

Each worker is a ``gateway run`` process sharing the shards through the group protocol, fed by
the simulator in a process of its own, writing to a real Kafka. Throughput is what Kafka
received (the growth of the trade topics' end offsets) over a window after the warm-up, so it
counts what was acknowledged, not what was read. On this 2-core machine the simulator, Kafka and
every worker share the same two cores: the figures show the coordination's overhead more than
any scaling a bigger machine would give.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gateway.runtime.processes import WorkerProcess, wait_for_exclusive_ownership, write_config
from gateway.simulator.config import simulated_symbols

WARMUP_S = 8.0
SESSION_TIMEOUT_MS = 6000


@dataclass(frozen=True)
class ScaleResult:
    workers: int
    events_per_s: float
    shards: int


@dataclass(frozen=True)
class FailoverResult:
    workers: int
    session_timeout_s: float
    shards_moved: int
    failover_s: float
    """From the kill -9 to every shard streaming again on the survivors."""


def _config(
    prefix: str, bootstrap: str, ws_url: str, rest_url: str, symbols: int
) -> dict[str, Any]:
    return {
        "binance": {
            "markets": {
                "spot": {
                    "symbols": list(simulated_symbols(symbols)),
                    "channels": ["trade", "aggTrade"],
                    "stream_url": ws_url,
                    "rest_url": rest_url,
                    "shards": 12,
                }
            }
        },
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix},
        "coordination": {"session_timeout_ms": SESSION_TIMEOUT_MS, "heartbeat_interval_ms": 1000},
        "log": {"level": "WARNING"},
    }


async def _received(bootstrap: str, topics: list[str]) -> int:
    """Records Kafka holds in ``topics`` (the sum of their partitions' end offsets)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        described = await admin.describe_topics(topics)
        partitions = [
            TopicPartition(topic["topic"], p["partition"])
            for topic in described
            for p in topic["partitions"]
        ]
        ends = await consumer.end_offsets(partitions)
        return sum(ends.values())
    finally:
        await consumer.stop()
        await admin.close()


async def _start(count: int, config: Path, layout: list[str], log_dir: Path) -> list[WorkerProcess]:
    workers = [WorkerProcess(f"bench-w{i}", config, log_dir) for i in range(1, count + 1)]
    for worker in workers:
        worker.start()
    await wait_for_exclusive_ownership(workers, layout, timeout_s=120, shared=True)
    return workers


def _stop(workers: list[WorkerProcess]) -> None:
    for worker in workers:
        if worker.alive:
            worker.signal(signal.SIGTERM)
    for worker in workers:
        try:
            if worker.process is not None:
                worker.process.wait(timeout=30)
        except Exception:  # noqa: BLE001 - whatever happened, leave nothing running
            worker.stop_now()


async def measure_scale_out(
    bootstrap: str, ws_url: str, rest_url: str, *, symbols: int, duration_s: float
) -> list[ScaleResult]:
    """Throughput with 1, 2 and 3 workers against a simulator trading as fast as it can."""
    results = []
    for count in (1, 2, 3):
        prefix = f"scale{count}x{time.time_ns()}"
        topics = [f"{prefix}.spot.trade", f"{prefix}.spot.agg_trade"]
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "gateway.yaml"
            layout = write_config(config, _config(prefix, bootstrap, ws_url, rest_url, symbols))
            workers = await _start(count, config, layout, Path(tmp))
            try:
                await asyncio.sleep(WARMUP_S)
                before, started = await _received(bootstrap, topics), time.monotonic()
                await asyncio.sleep(duration_s)
                after, ended = await _received(bootstrap, topics), time.monotonic()
            finally:
                _stop(workers)
        results.append(ScaleResult(count, (after - before) / (ended - started), len(layout)))
    return results


async def measure_failover(
    bootstrap: str, ws_url: str, rest_url: str, *, symbols: int
) -> FailoverResult:
    """Three workers; one is killed with SIGKILL; how long until its shards stream again."""
    prefix = f"failover{time.time_ns()}"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "gateway.yaml"
        layout = write_config(config, _config(prefix, bootstrap, ws_url, rest_url, symbols))
        workers = await _start(3, config, layout, Path(tmp))
        try:
            await asyncio.sleep(WARMUP_S)
            victim = workers[1]
            held = await victim.status() or {}
            moved = len(held.get("shards", {}))
            victim.signal(signal.SIGKILL)
            failover_s = await wait_for_exclusive_ownership(workers, layout, timeout_s=60)
        finally:
            _stop(workers)
    return FailoverResult(3, SESSION_TIMEOUT_MS / 1000, moved, failover_s)
