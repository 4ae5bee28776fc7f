"""Scale-out: worker processes share the shards through Kafka's group protocol.

Three ``gateway run`` processes stream 320 symbols of two markets from the simulator into a real
Kafka. Every shard streams on exactly one worker; ``kill -9`` of one hands its shards to the
others within the session timeout; a listing starts streaming within one exchangeInfo poll and a
delisting stops; and in the end Kafka holds every trade and aggregate trade the exchange made,
exactly once, the failover's hole backfilled. A second test drains a worker with SIGTERM under
load and finds nothing lost and nothing twice.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.runtime.processes import WorkerProcess, wait_for_exclusive_ownership, write_config
from gateway.simulator.config import SimulatorConfig, simulated_symbols
from gateway.simulator.exchange import ExchangeSimulator
from tests.faults.workers import trades_in_kafka
from tests.timing import scaled

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SESSION_TIMEOUT_S = 6.0
POLL_S = 2.0
HANDOVER_TIMEOUT_S = 10.0  # binance.handover_timeout_s, the default
SPOT_SYMBOLS = simulated_symbols(170)
USDM_SYMBOLS = simulated_symbols(150)


def config(
    prefix: str, bootstrap: str, spot: ExchangeSimulator, usdm: ExchangeSimulator | None
) -> dict[str, Any]:
    markets: dict[str, Any] = {
        "spot": {
            "select": {"quote_assets": ["USDT"]},
            "channels": ["trade", "aggTrade"],
            "stream_url": spot.ws_url,
            "rest_url": spot.rest_url,
            "shards": 8,
        }
    }
    if usdm is not None:
        markets["usdm"] = {
            "select": {"quote_assets": ["USDT"]},
            "channels": ["aggTrade"],
            "stream_url": usdm.ws_url,
            "rest_url": usdm.rest_url,
            "shards": 6,
        }
    return {
        "binance": {"markets": markets, "exchange_info_poll_s": POLL_S},
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix, "partitions": 3},
        "coordination": {
            "session_timeout_ms": int(SESSION_TIMEOUT_S * 1000),
            "heartbeat_interval_ms": 1000,
        },
        "log": {"level": "INFO", "json": True},
    }


def ground_truth(sims: dict[str, ExchangeSimulator]) -> dict[tuple[str, str, str], list[int]]:
    truth: dict[tuple[str, str, str], list[int]] = {}
    for market, sim in sims.items():
        for spec in sim.specs:
            if market == "spot":
                truth[(market, "trade", spec.symbol)] = [
                    t["t"] for t in sim.history.trades(spec.symbol)
                ]
            truth[(market, "agg_trade", spec.symbol)] = [
                a["a"] for a in sim.history.agg_trades(spec.symbol)
            ]
    return truth


def subscribed(sim: ExchangeSimulator, stream: str) -> bool:
    return any(c.is_open and stream in c.streams for c in sim.connections())


async def wait_until(condition, timeout_s: float) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"not within {timeout_s}s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_three_workers_share_fail_over_and_follow_listings(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    spot_config = SimulatorConfig(
        market="spot", symbols=SPOT_SYMBOLS, seed=21, trades_per_second_per_symbol=1.0,
        start_paused=True,
    )  # fmt: skip
    usdm_config = SimulatorConfig(
        market="usdm", symbols=USDM_SYMBOLS, seed=22, trades_per_second_per_symbol=1.0,
        start_paused=True,
    )  # fmt: skip
    workers: list[WorkerProcess] = []
    topics = [f"{topic_prefix}.spot.trade", f"{topic_prefix}.spot.agg_trade",
              f"{topic_prefix}.usdm.agg_trade"]  # fmt: skip
    async with ExchangeSimulator(spot_config) as spot, ExchangeSimulator(usdm_config) as usdm:
        layout = write_config(
            tmp_path / "gateway.yaml", config(topic_prefix, kafka_bootstrap, spot, usdm)
        )
        workers = [WorkerProcess(f"w{i}", tmp_path / "gateway.yaml", tmp_path) for i in (1, 2, 3)]
        try:
            for worker in workers:
                worker.start()
            await wait_for_exclusive_ownership(workers, layout, timeout_s=90, shared=True)
            owners = {w.worker_id: (await w.status() or {}).get("shards", {}) for w in workers}
            assert all(owners.values()), owners  # the three share the work
            await spot.wait_for_subscribers(2 * len(SPOT_SYMBOLS), timeout_s=30)
            await usdm.wait_for_subscribers(len(USDM_SYMBOLS), timeout_s=30)
            spot.resume()
            usdm.resume()
            await asyncio.sleep(4)

            victim = workers[1]
            victim.signal(signal.SIGKILL)
            failover_s = await wait_for_exclusive_ownership(workers, layout, timeout_s=60)
            assert failover_s <= scaled(SESSION_TIMEOUT_S + 6), failover_s
            assert sorted(owners[victim.worker_id]) != []

            spot.list_symbol("NEWCOINUSDT")
            listed_s = await wait_until(
                lambda: subscribed(spot, "newcoinusdt@trade"), scaled(3 * POLL_S)
            )
            assert listed_s <= scaled(POLL_S + 2.0), listed_s  # within one poll (plus a switch)
            delisted = SPOT_SYMBOLS[-1]
            spot.delist_symbol(delisted)
            # Within a poll and a switch. exchangeInfo goes ahead of the fail-over's backfill and
            # probes in the REST weight budget, which leave it a reserve (RestPriority), so the
            # poll does not wait for them; the make-before-break switch may wait out
            # binance.handover_timeout_s when the two connections share no frame.
            await wait_until(
                lambda: not subscribed(spot, f"{delisted.lower()}@trade"),
                scaled(2 * POLL_S + HANDOVER_TIMEOUT_S + 2.0),
            )
            await asyncio.sleep(3)

            spot.pause()
            usdm.pause()
            await asyncio.gather(spot.wait_idle(timeout_s=30), usdm.wait_idle(timeout_s=30))
            truth = ground_truth({"spot": spot, "usdm": usdm})
            # Read while the workers still run: what they had not yet read when stopped would
            # only be backfilled by the next owner, and there is none after the last one. The
            # new listing's trades from before its subscription are not expected (below).
            # A backfill may wait for the next minute of REST weight: Kafka can be quiet that long.
            got = await trades_in_kafka(
                topics, topic_prefix, kafka_bootstrap, truth, partial=frozenset({"NEWCOINUSDT"}),
                idle_timeout_s=scaled(70),
            )  # fmt: skip
            for survivor in (workers[0], workers[2]):
                survivor.signal(signal.SIGTERM)
            for survivor in (workers[0], workers[2]):
                assert await survivor.wait_exit(60) == 0, survivor.log()[-3000:]
        finally:
            for worker in workers:
                worker.stop_now()

    for key, sent in truth.items():
        ids = got.get(key, [])
        if key[2] == "NEWCOINUSDT":
            # Listed while running: streamed from the first trade after its subscription.
            assert ids and ids == sorted(set(ids)) and set(ids) <= set(sent), key
            continue
        assert ids == sent, (key, len(ids), len(sent), sorted(set(sent) - set(ids))[:5])
    assert set(got) == set(truth)  # nothing invented


async def test_sigterm_drains_a_worker_under_load_without_loss_or_duplicates(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    symbols = simulated_symbols(60)
    topics = [f"{topic_prefix}.spot.trade", f"{topic_prefix}.spot.agg_trade"]
    spot_config = SimulatorConfig(
        market="spot", symbols=symbols, seed=31, trades_per_second_per_symbol=15.0,
        start_paused=True,
    )  # fmt: skip
    workers: list[WorkerProcess] = []
    async with ExchangeSimulator(spot_config) as spot:
        layout = write_config(
            tmp_path / "gateway.yaml", config(topic_prefix, kafka_bootstrap, spot, None)
        )
        workers = [WorkerProcess(f"d{i}", tmp_path / "gateway.yaml", tmp_path) for i in (1, 2)]
        try:
            for worker in workers:
                worker.start()
            await wait_for_exclusive_ownership(workers, layout, timeout_s=90, shared=True)
            await spot.wait_for_subscribers(2 * len(symbols), timeout_s=30)
            spot.resume()
            await asyncio.sleep(3)

            drained = workers[0]
            drained.signal(signal.SIGTERM)
            assert await drained.wait_exit(30) == 0, drained.log()[-3000:]
            log = drained.log()
            assert "released shard" in log and "Traceback" not in log
            await wait_for_exclusive_ownership(workers, layout, timeout_s=30)
            await asyncio.sleep(3)

            spot.pause()
            await spot.wait_idle(timeout_s=30)
            truth = ground_truth({"spot": spot})
            got = await trades_in_kafka(topics, topic_prefix, kafka_bootstrap, truth)
            workers[1].signal(signal.SIGTERM)
            assert await workers[1].wait_exit(60) == 0, workers[1].log()[-3000:]
        finally:
            for worker in workers:
                worker.stop_now()

    for key, sent in truth.items():
        assert got.get(key, []) == sent, (key, len(got.get(key, [])), len(sent))
    assert set(got) == set(truth)
