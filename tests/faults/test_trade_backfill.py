"""Trades the stream never delivered reach Kafka anyway: from REST, once, in order, marked."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.consumers.reader import ConsumedRecord, read_all
from tests.integration.conftest import RunningGateway, SimulatorFactory, gateway_settings

pytestmark = [pytest.mark.kafka]

SYMBOLS = ("BTCUSDT", "ETHUSDT")
TRADES = 600


def micros(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


async def test_withheld_and_dropped_trades_are_backfilled_exactly_once(
    simulator_factory: SimulatorFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    sim = await simulator_factory(
        symbols=SYMBOLS, seed=5, trades_per_second_per_symbol=400,
        max_trades_per_symbol=TRADES, start_paused=True,
    )  # fmt: skip
    settings = gateway_settings(
        sim, symbols=SYMBOLS, kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix, registry_url=None,
    )  # fmt: skip
    async with RunningGateway(settings) as running:  # stopped (drained) here, failed or not
        await running.wait_connected()
        [connection] = running.gateway.connections
        await sim.wait_for_subscribers(2 * len(SYMBOLS), timeout_s=10)
        sim.resume()
        await asyncio.sleep(0.3)
        sim.inject("gap", symbol="BTCUSDT", count=25)  # recorded by the exchange, never streamed
        await asyncio.sleep(0.3)
        sim.inject("drop")  # the socket dies; trades keep happening while the gateway reconnects
        await sim.wait_idle(timeout_s=30)

        trades = {s: sim.history.trades(s) for s in SYMBOLS}
        aggs = {s: sim.history.agg_trades(s) for s in SYMBOLS}
        expected = sum(map(len, trades.values())) + sum(map(len, aggs.values()))
        await running.wait_acked(expected, timeout_s=60)
    assert connection.reconnects >= 1

    topics = [f"{topic_prefix}.spot.trade", f"{topic_prefix}.spot.agg_trade"]
    records = await read_all(
        topics, bootstrap_servers=kafka_bootstrap, expected=expected, settle_s=1.5
    )
    assert len(records) == expected
    by_key: dict[tuple[str, str | None], list[ConsumedRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        by_key[(record.topic.rsplit(".", 1)[-1], record.key)].append(record)

    backfilled = 0
    for symbol in SYMBOLS:
        got_trades = by_key[("trade", symbol)]
        assert [r.value["trade_id"] for r in got_trades] == [t["t"] for t in trades[symbol]]
        for record, sent in zip(got_trades, trades[symbol], strict=True):
            assert record.value["price"] == Decimal(sent["p"])
            assert record.value["quantity"] == Decimal(sent["q"])
            assert micros(record.value["trade_time_us"]) == sent["T"] * 1000
            assert record.value["buyer_is_maker"] is sent["m"]
            backfilled += record.headers.get("backfilled") == "1"
        got_aggs = by_key[("agg_trade", symbol)]
        assert [r.value["agg_trade_id"] for r in got_aggs] == [a["a"] for a in aggs[symbol]]
        for record, sent in zip(got_aggs, aggs[symbol], strict=True):
            assert (record.value["first_trade_id"], record.value["last_trade_id"]) == (
                sent["f"],
                sent["l"],
            )
            assert record.value["price"] == Decimal(sent["p"])
    assert backfilled >= 25  # at least the withheld trades came from REST
    metrics = running.gateway.metrics
    assert metrics.backfilled.labels("spot", "trade").get() == backfilled
    assert metrics.trade_gaps.labels("spot", "trade").get() == 0
