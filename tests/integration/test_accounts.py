"""Account streams against the simulator: spot over the WebSocket API, futures over listen keys."""

from __future__ import annotations

import pytest

from gateway.binance.signing import KeyType
from gateway.simulator.markets import Market
from tests.integration.accounts_support import (
    RecordingSink,
    account_settings,
    make_stream,
    pem_keys,
    running,
)

SECRET = "desk-a-hmac-secret-0123456789"


async def test_spot_account_fills_cancels_and_balances_arrive_in_order(simulator_factory, tmp_path):
    sim = await simulator_factory(symbols=("BTCUSDT",), api_keys={"desk-a-key": SECRET})
    account = account_settings(sim, tmp_path, alias="desk-a", api_key="desk-a-key", secret=SECRET)
    sink = RecordingSink()
    stream, metrics = make_stream(account, sink)
    async with running(stream):
        await sink.wait_for(lambda kinds: "account_snapshot" in kinds)
        assert stream.health()["up"] is True
        order_id = await sim.emit_user_order("BTCUSDT", "BUY", api_key="desk-a-key")
        await sim.emit_user_cancel(order_id, api_key="desk-a-key")
        await sim.emit_user_fill("BTCUSDT", "SELL", api_key="desk-a-key")
        await sim.emit_user_deposit("ETH", 5 * 10**8, api_key="desk-a-key")
        await sink.wait_for(lambda kinds: len(kinds) >= 8)
    assert sink.kinds() == [
        "account_snapshot",
        "execution_report",  # NEW (resting)
        "execution_report",  # CANCELED
        "execution_report",  # NEW
        "execution_report",  # TRADE
        "account_position",
        "balance_update",
        "account_position",
    ]
    reports = sink.values("execution_report")
    assert [r["execution_type"] for r in reports] == ["NEW", "CANCELED", "NEW", "TRADE"]
    assert reports[0]["order_id"] == reports[1]["order_id"] == order_id
    assert {r.topic for r in sink.records} == {"binance.spot.account.desk-a"}
    (snapshot,) = sink.values("account_snapshot")
    assert snapshot["reason"] == "start" and snapshot["account"] == "desk-a"


async def test_futures_account_fills_and_balances_arrive_in_order(simulator_factory, tmp_path):
    sim = await simulator_factory(
        market=Market.USDM, symbols=("BTCUSDT",), api_keys={"desk-b-key": SECRET}
    )
    account = account_settings(sim, tmp_path, alias="desk-b", api_key="desk-b-key", secret=SECRET)
    sink = RecordingSink()
    stream, metrics = make_stream(account, sink)
    async with running(stream):
        await sink.wait_for(lambda kinds: "account_snapshot" in kinds)
        order_id = await sim.emit_user_order("BTCUSDT", "BUY", api_key="desk-b-key")
        await sim.emit_user_cancel(order_id, api_key="desk-b-key")
        await sim.emit_user_fill("BTCUSDT", "BUY", api_key="desk-b-key")
        await sim.emit_user_deposit("USDT", 10**8, api_key="desk-b-key")
        await sink.wait_for(lambda kinds: len(kinds) >= 8)
    assert sink.kinds() == [
        "account_snapshot",
        "order_trade_update",
        "order_trade_update",
        "order_trade_update",
        "trade_lite",
        "order_trade_update",
        "account_update",
        "account_update",
    ]
    assert {r.topic for r in sink.records} == {"binance.usdm.account.desk-b"}
