"""Reconciliation: the signed calls per market, and the snapshot record built from answers."""

from decimal import Decimal
from typing import Any

import pytest

from gateway.binance.markets import Market
from gateway.binance.reconcile import build_snapshot, reconciliation_calls
from gateway.errors import MessageParseError
from gateway.records.avro import SchemaCatalog, SingleObjectFraming, decode, read_header
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer

SPOT_ORDER = {
    "symbol": "LTCBTC", "orderId": 1, "orderListId": -1, "clientOrderId": "myOrder1",
    "price": "0.1", "origQty": "1.0", "executedQty": "0.0", "cummulativeQuoteQty": "0.0",
    "status": "NEW", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY", "stopPrice": "0.0",
    "icebergQty": "0.0", "time": 1499827319559, "updateTime": 1499827319559, "isWorking": True,
}  # fmt: skip
FUTURES_ORDER = {
    "avgPrice": "0.00000", "clientOrderId": "abc", "cumQuote": "0", "executedQty": "0",
    "orderId": 1917641, "origQty": "0.40", "origType": "TRAILING_STOP_MARKET", "price": "0",
    "reduceOnly": False, "side": "BUY", "positionSide": "SHORT", "status": "NEW",
    "stopPrice": "9300", "symbol": "BTCUSDT", "time": 1579276756075, "timeInForce": "GTC",
    "type": "TRAILING_STOP_MARKET", "updateTime": 1579276756075,
}  # fmt: skip
FUTURES_ACCOUNT = {
    "assets": [
        {"asset": "USDT", "walletBalance": "23.72469206", "unrealizedProfit": "0.00000000",
         "availableBalance": "23.72469206", "updateTime": 1625474304765},
    ],
    "positions": [],
}  # fmt: skip
POSITIONS = [
    {"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "1.000", "entryPrice": "0.00000",
     "unRealizedProfit": "0.00000000", "marginType": "isolated", "updateTime": 1625474304765},
    {"symbol": "ETHUSDT", "positionSide": "BOTH", "positionAmt": "0.000", "entryPrice": "0",
     "unRealizedProfit": "0", "updateTime": 0},
]  # fmt: skip


def test_calls_read_every_symbol_within_documented_weights() -> None:
    assert [(c.path, c.weight) for c in reconciliation_calls(Market.SPOT)] == [
        ("/api/v3/openOrders", 80),
        ("/api/v3/account", 20),
    ]
    assert [c.name for c in reconciliation_calls(Market.USDM)] == [
        "open_orders", "account", "positions",
    ]  # fmt: skip
    assert all("symbol" not in c.params for m in Market for c in reconciliation_calls(m))
    assert sum(c.weight for c in reconciliation_calls(Market.COINM)) == 46


def test_spot_snapshot_keeps_exact_decimals_and_times_in_microseconds() -> None:
    answers = {
        "open_orders": [SPOT_ORDER],
        "account": {"balances": [{"asset": "BTC", "free": "4723846.89208129", "locked": "0.0"}]},
    }
    snapshot = build_snapshot(
        Market.SPOT, "desk-a", "reconnect", answers, taken_at_us=5, received_at_us=6
    )
    (order,) = snapshot.open_orders
    assert order.price == Decimal("0.1") and order.created_time_us == 1499827319559000
    assert order.position_side is None
    assert snapshot.balances[0].free == Decimal("4723846.89208129")
    assert snapshot.positions == [] and snapshot.partition_key == "desk-a"
    assert snapshot.schema_group == "spot_user" and snapshot.record_time_us == 5


def test_futures_snapshot_keeps_only_open_positions_and_encodes_with_its_schema() -> None:
    answers = {"open_orders": [FUTURES_ORDER], "account": FUTURES_ACCOUNT, "positions": POSITIONS}
    snapshot = build_snapshot(
        Market.USDM, "desk-b", "listen_key", answers, taken_at_us=1, received_at_us=2
    )
    assert [p.symbol for p in snapshot.positions] == ["BTCUSDT"]
    assert snapshot.balances[0].wallet_balance == Decimal("23.72469206")
    assert snapshot.balances[0].locked is None
    catalog = SchemaCatalog.load()
    record = RecordBuilder(catalog, SingleObjectFraming(), TopicNamer(), "g").build(snapshot)
    header = read_header(record.value)
    schema = catalog.by_fingerprint(header.fingerprint or b"")
    assert schema is not None and str(schema.key) == "usdm_user/account_snapshot"
    value = decode(record.value, header, schema)
    assert value["reason"] == "listen_key" and value["open_orders"][0]["order_id"] == 1917641
    assert value["positions"][0]["position_amount"] == Decimal("1.000")


@pytest.mark.parametrize(
    "answers",
    [
        {"open_orders": {"not": "a list"}, "account": {"balances": []}},
        {"open_orders": [], "account": {}},
        {"open_orders": [{**SPOT_ORDER, "price": 0.1}], "account": {"balances": []}},
    ],
)
def test_an_answer_binance_would_not_send_is_a_parse_error(answers: dict[str, Any]) -> None:
    with pytest.raises(MessageParseError, match="reconciliation answer"):
        build_snapshot(Market.SPOT, "a", "start", answers, taken_at_us=1, received_at_us=1)
