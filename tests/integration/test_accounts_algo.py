"""The algo-order test (issue 11): the futures account events Binance sends today, from the
simulator's user-data stream through the account stream to the account's Kafka topic, typed.

Since 2025-12-09 USD-M stop and take-profit orders report as ALGO_UPDATE; before this they were
dead-lettered and account consumers never saw their protective orders.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.consumers.reader import read_all
from gateway.simulator.markets import Market
from tests.integration.accounts_support import (
    account_settings,
    eventually,
    health_total,
    streaming_to_kafka,
)
from tests.integration.conftest import SimulatorFactory

pytestmark = [pytest.mark.kafka]

SECRET = "algo-secret"


async def test_algo_orders_trigger_rejects_and_grid_strategies_arrive_typed_in_order(
    simulator_factory: SimulatorFactory, tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    usdm_sim = await simulator_factory(
        market=Market.USDM, symbols=("BTCUSDT", "ETHUSDT"), api_keys={"k": SECRET}
    )
    coinm_sim = await simulator_factory(
        market=Market.COINM, symbols=("BTCUSD_PERP",), api_keys={"k": SECRET}
    )
    accounts = [
        account_settings(usdm_sim, tmp_path, alias="desk-algo", api_key="k", secret=SECRET),
        account_settings(coinm_sim, tmp_path, alias="desk-algo", api_key="k", secret=SECRET),
    ]
    async with streaming_to_kafka(accounts, kafka_bootstrap, topic_prefix, snapshots=2) as run:
        topics, streams = run.topics, run.streams
        stop = await usdm_sim.emit_user_algo_order("BTCUSDT", "SELL", api_key="k")
        await usdm_sim.emit_user_algo_trigger(stop, api_key="k")
        take_profit = await usdm_sim.emit_user_algo_order(
            "ETHUSDT", "BUY", "TAKE_PROFIT_MARKET", api_key="k"
        )
        await usdm_sim.emit_user_algo_trigger(take_profit, rejected=True, api_key="k")
        trailing = await usdm_sim.emit_user_algo_order(
            "BTCUSDT", "SELL", "TRAILING_STOP_MARKET", api_key="k"
        )
        await usdm_sim.emit_user_grid("ETHUSDT", api_key="k")
        await coinm_sim.emit_user_grid("BTCUSD_PERP", api_key="k")
        await eventually(lambda: health_total(streams, "events") >= 9 + 2)
    records = await read_all(
        topics, bootstrap_servers=kafka_bootstrap, expected=2 + 9 + 2, timeout_s=30
    )
    usdm = [r for r in records if r.topic == topics[0]]
    coinm = [r for r in records if r.topic == topics[1]]
    assert [r.headers["event_kind"] for r in usdm] == [
        "account_snapshot",
        "algo_update",  # stop: NEW
        "algo_update",  # TRIGGERED
        "algo_update",  # FINISHED
        "algo_update",  # take profit: NEW
        "conditional_order_trigger_reject",
        "algo_update",  # REJECTED
        "algo_update",  # trailing stop: NEW
        "strategy_update",
        "grid_update",
    ]
    assert [r.headers["event_kind"] for r in coinm] == [
        "account_snapshot",
        "strategy_update",
        "grid_update",
    ]
    algos = [r.value for r in usdm if r.headers["event_kind"] == "algo_update"]
    assert [(a["algo_id"], a["algo_status"]) for a in algos] == [
        (stop, "NEW"),
        (stop, "TRIGGERED"),
        (stop, "FINISHED"),
        (take_profit, "NEW"),
        (take_profit, "REJECTED"),
        (trailing, "NEW"),
    ]
    assert [a["order_type"] for a in algos[::3]] == ["STOP_MARKET", "TAKE_PROFIT_MARKET"]
    assert algos[0]["order_id"] is None and isinstance(algos[1]["order_id"], int)
    assert algos[2]["executed_quantity"] > Decimal(0)
    assert algos[2]["average_price"] == algos[0]["trigger_price"]
    assert algos[4]["failure_reason"] == "Reduce Only reject"
    assert (algos[0]["activated"], algos[5]["activated"]) == (None, False)
    assert all(a["extra"] == {} and a["market"] == "usdm" for a in algos)
    [reject] = [r for r in usdm if r.headers["event_kind"] == "conditional_order_trigger_reject"]
    assert (reject.key, reject.value["order_id"]) == ("ETHUSDT", algos[4]["order_id"])
    grid = next(r.value for r in coinm if r.headers["event_kind"] == "grid_update")
    assert (grid["market"], grid["symbol"], grid["strategy_status"]) == (
        "coinm",
        "BTCUSD_PERP",
        "WORKING",
    )
    assert {r.partition for r in records} == {0}
