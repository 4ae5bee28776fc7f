"""A zombie worker is fenced: paused past its session timeout, it writes nothing after the new owner.

Two ``gateway run`` processes share a spot market. One is frozen with SIGSTOP for well over its
session timeout, so the group gives its shards to the other, which resumes them from Kafka and
streams them; then the frozen one is woken with SIGCONT, with records still in its producer and
its sockets. Its membership lease (docs/fencing.md) lapsed while it slept, and the broker says it
was expelled: not one of its records lands after the new owner's first record of the same
partition, it stops, and Kafka holds every trade and aggregate trade exactly once.
"""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from gateway.consumers.reader import ConsumedRecord, read_all
from gateway.records.topics import HEADER_GATEWAY_ID
from gateway.runtime.processes import (
    WorkerProcess,
    streaming_shards,
    wait_for_exclusive_ownership,
    write_config,
)
from gateway.simulator.config import SimulatorConfig, simulated_symbols
from gateway.simulator.exchange import ExchangeSimulator
from tests.faults.windows import assert_pauses_declared, by_group_and_kind, gap_windows
from tests.faults.workers import ID_FIELD
from tests.timing import scaled

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SESSION_TIMEOUT_S = 6.0
SYMBOLS = simulated_symbols(24)
KLINE_PAUSE_US = 5_000_000  # spot klines come every 2 s; the take-over's hole is the session's


def config(prefix: str, bootstrap: str, spot: ExchangeSimulator) -> dict[str, Any]:
    return {
        "binance": {"markets": {"spot": {
            "select": {"quote_assets": ["USDT"]}, "channels": ["trade", "aggTrade", "kline_1m"],
            "stream_url": spot.ws_url, "rest_url": spot.rest_url, "shards": 4,
        }}},
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix, "partitions": 3},
        "coordination": {
            "session_timeout_ms": int(SESSION_TIMEOUT_S * 1000), "heartbeat_interval_ms": 1000,
        },
        "log": {"level": "INFO", "json": True},
    }  # fmt: skip


def written_after_takeover(records: list[ConsumedRecord], zombie: str) -> list[ConsumedRecord]:
    """The zombie's records that landed after another worker's first record of a symbol the
    zombie streamed, in the same partition."""
    zombie_symbols = {r.key for r in records if r.headers.get(HEADER_GATEWAY_ID) == zombie}
    takeover: dict[tuple[str, int], int] = {}
    for r in records:
        if r.key in zombie_symbols and r.headers.get(HEADER_GATEWAY_ID) != zombie:
            where = (r.topic, r.partition)
            takeover[where] = min(takeover.get(where, r.offset), r.offset)
    return [
        r
        for r in records
        if r.headers.get(HEADER_GATEWAY_ID) == zombie
        and r.offset > takeover.get((r.topic, r.partition), r.offset)
    ]


async def test_a_worker_paused_past_its_session_writes_nothing_after_the_new_owner(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = [f"{topic_prefix}.spot.trade", f"{topic_prefix}.spot.agg_trade"]
    spot_config = SimulatorConfig(
        market="spot", symbols=SYMBOLS, seed=41, trades_per_second_per_symbol=25.0,
        start_paused=True,
    )  # fmt: skip
    workers: list[WorkerProcess] = []
    async with ExchangeSimulator(spot_config) as spot:
        layout = write_config(
            tmp_path / "gateway.yaml", config(topic_prefix, kafka_bootstrap, spot)
        )
        workers = [WorkerProcess(f"z{i}", tmp_path / "gateway.yaml", tmp_path) for i in (1, 2)]
        zombie, heir = workers
        try:
            for worker in workers:
                worker.start()
            await wait_for_exclusive_ownership(workers, layout, timeout_s=scaled(90), shared=True)
            lost = sorted((await zombie.status() or {}).get("shards", {}))
            assert lost, "the zombie-to-be streams no shard"
            await spot.wait_for_subscribers(2 * len(SYMBOLS), timeout_s=scaled(30))
            spot.resume()
            await asyncio.sleep(3)  # both publish under load

            zombie.signal(signal.SIGSTOP)
            try:
                # The heir streams every shard (the frozen one does not answer /readyz) ...
                await wait_for_exclusive_ownership(workers, layout, timeout_s=scaled(60))
                assert all(
                    heir.worker_id in held for held in (await streaming_shards([heir])).values()
                )
                await asyncio.sleep(scaled(3))  # ... and has written the zombie's shards a while
            finally:
                zombie.signal(signal.SIGCONT)
            # Woken, it learns it was expelled and stops rather than write what it held.
            code = await zombie.wait_exit(scaled(60))
            assert code != 0, zombie.log()[-3000:]
            assert "lapsed -> fenced" in zombie.log(), zombie.log()[-3000:]
            await wait_for_exclusive_ownership([heir], layout, timeout_s=scaled(30))
            await asyncio.sleep(3)

            spot.pause()
            await spot.wait_idle(timeout_s=30)
            truth = {
                **{("trade", s): [t["t"] for t in spot.history.trades(s)] for s in SYMBOLS},
                **{("agg_trade", s): [a["a"] for a in spot.history.agg_trades(s)] for s in SYMBOLS},
            }
            expected = sum(map(len, truth.values()))
            records = await read_all(
                topics, bootstrap_servers=kafka_bootstrap, expected=expected,
                timeout_s=scaled(90), settle_s=3.0,
            )  # fmt: skip
            # What else was written by now: klines and the heir's declarations.
            others = await read_all(
                [f"{topic_prefix}.spot.kline", f"{topic_prefix}.stream_status"],
                bootstrap_servers=kafka_bootstrap, expected=1, settle_s=5.0,
            )  # fmt: skip
            heir.signal(signal.SIGTERM)
            assert await heir.wait_exit(scaled(60)) == 0, heir.log()[-3000:]
        finally:
            for worker in workers:
                worker.stop_now()

    late = written_after_takeover(records, zombie.worker_id)
    assert not late, [(r.topic, r.partition, r.offset, r.key) for r in late[:5]]
    by_zombie = [r for r in records if r.headers.get(HEADER_GATEWAY_ID) == zombie.worker_id]
    assert by_zombie  # it did stream before it was frozen
    got: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in records:  # one partition per symbol: read order is Kafka's order
        kind = r.topic.rsplit(".", 1)[1]
        assert r.key is not None
        got[(kind, r.key)].append(r.value[ID_FIELD[kind]])
    for key, sent in truth.items():
        ids = got.get(key, [])
        assert ids == sent, (key, len(ids), len(sent), sorted(set(sent) - set(ids))[:5])
    assert set(got) == set(truth)  # nothing invented

    # Klines are not recovered: the zombie declared nothing of the hole it left, so the heir
    # did, per stream, from the zombie's last record to its own first (reason taken_over).
    late = written_after_takeover(others, zombie.worker_id)
    assert not late, [(r.topic, r.partition, r.offset, r.key) for r in late[:5]]
    grouped = by_group_and_kind(others)
    windows = gap_windows(grouped["", "stream_status"], "spot")
    orphans = {r.key for r in others if r.topic.endswith(".kline") and r.key is not None
               and r.headers.get(HEADER_GATEWAY_ID) == zombie.worker_id}  # fmt: skip
    assert orphans
    for symbol in sorted(orphans):
        stream = f"{symbol.lower()}@kline_1m"
        assert any(s is None for s, _ in windows[stream]), (stream, windows[stream])
        values = [v for v in grouped["spot", "kline"] if v["_key"] == symbol]
        assert assert_pauses_declared(stream, values, windows[stream], KLINE_PAUSE_US), stream
