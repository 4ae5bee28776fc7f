"""Simulator → gateway → real Kafka (+ real registry) → consumer: every field, exactly."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway.consumers.reader import ConsumedRecord, read_all
from gateway.coordination.plan import slot_of
from tests.integration.conftest import RunningGateway, SimulatorFactory, gateway_settings

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
TRADES_PER_SYMBOL = 400


def micros(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def by_symbol(records: list[ConsumedRecord]) -> dict[str, list[ConsumedRecord]]:
    grouped: dict[str, list[ConsumedRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        grouped[record.key or ""].append(record)
    return grouped


def assert_common(record: ConsumedRecord, sent: dict[str, Any], symbol: str) -> None:
    value = record.value
    assert record.key == symbol == value["symbol"] == sent["s"]
    assert value["market"] == "spot"
    assert micros(value["event_time_us"]) == sent["E"] * 1000
    assert micros(value["trade_time_us"]) == sent["T"] * 1000
    # Exact decimals: equal as numbers, and the string Binance sent is recovered digit for digit.
    assert value["price"] == Decimal(sent["p"])
    assert value["quantity"] == Decimal(sent["q"])
    assert format(value["price"].quantize(Decimal(sent["p"])), "f") == sent["p"]
    assert value["buyer_is_maker"] is sent["m"]
    assert value["best_match"] is sent["M"]
    assert value["extra"] == {}
    assert record.headers["gateway_id"] == "it-gateway"
    assert int(record.headers["received_at_us"]) == micros(value["received_at_us"])


@pytest.mark.parametrize("registry", [True, False], ids=["confluent-framing", "single-object"])
async def test_trades_and_agg_trades_reach_kafka_exactly(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    schema_registry_url: str,
    topic_prefix: str,
    registry: bool,
) -> None:
    sim = await simulator_factory(
        symbols=SYMBOLS,
        seed=11,
        trades_per_second_per_symbol=None,
        max_trades_per_symbol=TRADES_PER_SYMBOL,
        start_paused=True,
    )
    registry_url = schema_registry_url if registry else None
    settings = gateway_settings(
        sim,
        symbols=SYMBOLS,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        registry_url=registry_url,
    )
    running = RunningGateway(settings)
    await running.wait_connected()
    await sim.wait_for_subscribers(2 * len(SYMBOLS), timeout_s=10)
    sim.resume()
    await sim.wait_idle(timeout_s=30)

    trades = {s: sim.history.trades(s) for s in SYMBOLS}
    aggs = {s: sim.history.agg_trades(s) for s in SYMBOLS}
    assert all(len(t) == TRADES_PER_SYMBOL for t in trades.values())
    expected = sum(map(len, trades.values())) + sum(map(len, aggs.values()))
    await running.wait_acked(expected)
    await running.stop()

    trade_topic, agg_topic = f"{topic_prefix}.spot.trade", f"{topic_prefix}.spot.agg_trade"
    records = await read_all(
        [trade_topic, agg_topic],
        bootstrap_servers=kafka_bootstrap,
        registry_url=registry_url,
        expected=expected,
        timeout_s=30,
        settle_s=1.5,  # and nothing extra arrives after the expected records
    )
    assert len(records) == expected
    got_trades = by_symbol([r for r in records if r.topic == trade_topic])
    got_aggs = by_symbol([r for r in records if r.topic == agg_topic])

    for symbol in SYMBOLS:
        # Per-symbol order: the symbol's records sit in one partition, in the order Binance sent.
        assert len({r.partition for r in got_trades[symbol]}) == 1
        assert [r.value["trade_id"] for r in got_trades[symbol]] == [t["t"] for t in trades[symbol]]
        for record, sent in zip(got_trades[symbol], trades[symbol], strict=True):
            assert_common(record, sent, symbol)
            assert record.headers["event_kind"] == "trade"
        assert [r.value["agg_trade_id"] for r in got_aggs[symbol]] == [a["a"] for a in aggs[symbol]]
        for record, sent in zip(got_aggs[symbol], aggs[symbol], strict=True):
            assert_common(record, sent, symbol)
            assert (record.value["first_trade_id"], record.value["last_trade_id"]) == (
                sent["f"],
                sent["l"],
            )
            assert record.headers["event_kind"] == "agg_trade"


async def test_metrics_and_probes_follow_the_gateway(
    simulator_factory: SimulatorFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    import aiohttp

    sim = await simulator_factory(symbols=("BTCUSDT",), trades_per_second_per_symbol=200)
    settings = gateway_settings(
        sim, symbols=("BTCUSDT",), kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix, registry_url=None,
    )  # fmt: skip
    running = RunningGateway(settings)
    await running.wait_connected()
    await running.wait_acked(50)
    base = running.status_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with http.get(f"{base}/readyz") as response:
            body = await response.json()
            assert (response.status, body["ready"], body["in_group"]) == (200, True, True)
            held = body["shards"][f"spot-{slot_of('BTCUSDT', 8):03d}"]
            assert list(held["connections"].values()) == [True]
        async with http.get(f"{base}/metrics") as response:
            text = await response.text()
    assert 'gateway_events_total{kind="trade",market="spot"}' in text
    assert "gateway_frame_to_ack_seconds_count 0.0" not in text  # acks were timed
    assert "gateway_kafka_queue_depth" in text
    assert "gateway_shards_owned 8.0" in text  # alone in its group: every slot is its own
    assert 'gateway_connections_up{market="spot"} 1.0' in text
    await running.stop()
    assert running.gateway.readiness()[0] is False  # draining, then stopped: not ready


async def test_stop_under_full_load_stops_reading_and_drains_promptly(
    simulator_factory: SimulatorFactory, kafka_bootstrap: str, topic_prefix: str
) -> None:
    # As fast as the gateway reads: every recv() completes at once, the case in which a
    # cancellation swallowed by asyncio.wait_for once left the reader running after SIGTERM.
    sim = await simulator_factory(symbols=SYMBOLS, seed=4, trades_per_second_per_symbol=None)
    settings = gateway_settings(
        sim, symbols=SYMBOLS, kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix, registry_url=None,
    )  # fmt: skip
    running = RunningGateway(settings)
    await running.wait_connected()
    await running.wait_acked(2_000)
    connection = running.clients[0]
    started = asyncio.get_running_loop().time()
    await running.stop()
    assert asyncio.get_running_loop().time() - started < 10
    frames = connection.frames
    await asyncio.sleep(0.5)
    assert connection.frames == frames  # nothing read after the stop
    assert running.gateway.sink.stats.acked == running.gateway.sink.stats.enqueued  # all drained
