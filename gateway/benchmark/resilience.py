"""``make bench`` figures for what issue 5 promises: how fast 1,000 books sync within Binance's
REST weight limit, and what rotating connections costs (events dropped or repeated in Kafka)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from gateway.adapters.binance_ws import BinanceStreamClient
from gateway.binance.book import SyncState
from gateway.binance.markets import Market
from gateway.binance.rest_payloads import depth_call
from gateway.consumers.reader import read_all
from gateway.runtime.worker import Gateway
from gateway.settings import GatewaySettings
from gateway.simulator.config import SimulatorConfig, simulated_symbols
from gateway.simulator.exchange import ExchangeSimulator

SPOT_WEIGHT_PER_MINUTE = 6000
HEADROOM = 0.9  # RestWeightBudget's default: never plan to the last unit of Binance's budget


@dataclass(frozen=True)
class BookSyncResult:
    books: int
    depth_limit: int
    seconds: float
    total_weight: int
    weight_limited_minimum_s: float


@dataclass(frozen=True)
class RotationResult:
    seconds: float
    rotations: int
    reconnects: int
    seen_twice_and_filtered: int
    duplicated_in_kafka: int
    dropped_in_kafka: int


def weight_limited_minimum_s(total_weight: int) -> float:
    """The least time Binance's per-minute weight lets ``total_weight`` be spent in."""
    per_minute = SPOT_WEIGHT_PER_MINUTE * HEADROOM
    return max(0.0, (total_weight - per_minute) / per_minute * 60)


def _settings(
    sim: ExchangeSimulator, bootstrap: str, prefix: str, **spot: object
) -> GatewaySettings:
    return GatewaySettings(
        gateway_id="bench",
        binance={"markets": {"spot": {"stream_url": sim.ws_url, "rest_url": sim.rest_url, **spot}}},
        kafka={"bootstrap_servers": bootstrap, "topic_prefix": prefix},
        status={"enabled": False},
        log={"json": False},
    )


async def measure_book_sync(
    bootstrap: str, books: int = 1000, depth_limit: int = 100
) -> BookSyncResult:
    """Start a gateway on ``books`` depth streams at once; time until every book is synced."""
    symbols = simulated_symbols(books)
    config = SimulatorConfig(symbols=symbols, trades_per_second_per_symbol=2.0, seed=5)
    async with ExchangeSimulator(config) as sim:
        settings = _settings(
            sim, bootstrap, f"benchbooks{time.time_ns()}", symbols=symbols, channels=["depth"],
            book_depth_limit=depth_limit, book_snapshot_interval_s=None, backfill=False,
        )  # fmt: skip
        gateway = Gateway(settings)
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        started = time.monotonic()
        await gateway.started.wait()
        keeper = gateway.keepers[Market.SPOT].books
        assert keeper is not None
        while True:
            synced = sum(
                1
                for s in symbols
                if (sync := keeper.synchronizer(s)) is not None and sync.state is SyncState.SYNCED
            )
            if synced == books or task.done():
                break
            await asyncio.sleep(0.1)
        seconds = time.monotonic() - started
        stop.set()
        await task
    weight = depth_call(Market.SPOT, symbols[0], depth_limit).weight * books
    return BookSyncResult(books, depth_limit, seconds, weight, weight_limited_minimum_s(weight))


async def measure_rotation(bootstrap: str, seconds: float = 10.0) -> RotationResult:
    """Rotate every second against an exchange that cuts every four; count what Kafka got."""
    symbols = simulated_symbols(5)
    config = SimulatorConfig(
        symbols=symbols, seed=6, trades_per_second_per_symbol=100, connection_lifetime_s=4.0,
        start_paused=True,
    )  # fmt: skip
    async with ExchangeSimulator(config) as sim:
        settings = _settings(
            sim, bootstrap, f"benchrotation{time.time_ns()}", symbols=symbols,
            channels=["trade", "aggTrade"], backfill=False,
        ).model_copy(deep=True)  # fmt: skip
        settings = settings.model_copy(
            update={"binance": settings.binance.model_copy(update={"rotate_after_s": 1.0})}
        )
        gateway = Gateway(settings)
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        await gateway.started.wait()
        await sim.wait_for_subscribers(2 * len(symbols), timeout_s=10)
        sim.resume()
        await asyncio.sleep(seconds)
        connections = [c for c in gateway.connections if isinstance(c, BinanceStreamClient)]
        sim.pause()
        await sim.wait_idle(timeout_s=10)
        await asyncio.sleep(0.5)
        sent = {s: [t["t"] for t in sim.history.trades(s)] for s in symbols}
        stop.set()
        await task
    records = await read_all(
        [gateway.namer.topic("spot", "trade")],
        bootstrap_servers=bootstrap,
        expected=sum(map(len, sent.values())),
        settle_s=1.0,
    )
    got = Counter((r.key, r.value["trade_id"]) for r in records)
    expected = {(s, t) for s, ids in sent.items() for t in ids}
    return RotationResult(
        seconds=seconds,
        rotations=sum(c.rotations for c in connections),
        reconnects=sum(c.reconnects for c in connections),
        seen_twice_and_filtered=sum(c.handover_duplicates for c in connections),
        duplicated_in_kafka=sum(n - 1 for n in got.values() if n > 1),
        dropped_in_kafka=len(expected - set(got)),
    )
