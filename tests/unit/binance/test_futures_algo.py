"""Futures account events of today: algo orders, trigger rejects, grid strategies, ACCOUNT_UPDATE.a.S."""

from decimal import Decimal

import orjson
import pytest

from gateway.binance.events.catalog import Event
from gateway.binance.events.futures_algo import (
    AlgoUpdate,
    ConditionalOrderTriggerReject,
    GridUpdate,
    StrategyUpdate,
)
from gateway.binance.events.futures_user import AccountUpdate
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.errors import MessageParseError
from tests.vectors import vector

USDM = FrameParser(Market.USDM)
COINM = FrameParser(Market.COINM)


def parse(parser: FrameParser, payload: object) -> Event:
    [event] = parser.parse(orjson.dumps(payload), received_at_us=7)
    return event


def test_the_documented_algo_update_becomes_a_typed_account_record() -> None:
    event = parse(USDM, vector("usdm-user/ALGO_UPDATE.json"))
    assert isinstance(event, AlgoUpdate)
    assert (event.schema_group, event.KIND, event.partition_key) == (
        "usdm_user",
        "algo_update",
        "BNBUSDT",
    )
    # E is the event time, T the transaction time (the doc example's comments swap them).
    assert (event.event_time_us, event.transaction_time_us) == (
        1750515742303000,
        1750515742297000,
    )
    assert (event.client_algo_id, event.algo_id, event.algo_type) == (
        "Q5xaq5EGKgXXa0fD7fs0Ip",
        2148719,
        "CONDITIONAL",
    )
    assert (event.order_type, event.algo_status, event.side) == ("TAKE_PROFIT", "CANCELED", "SELL")
    assert event.order_id is None  # "ai": "" until triggered
    assert (event.trigger_price, event.price, event.quantity) == (
        Decimal("750"),
        Decimal("750"),
        Decimal("0.01"),
    )
    assert (event.trigger_time_us, event.good_till_time_us) == (0, 0)
    assert event.failure_reason == "Reduce Only reject"
    assert event.activated is None and event.extra == {}


def test_a_triggered_trailing_algo_order_carries_its_order_id_and_activation() -> None:
    payload = vector("usdm-user/ALGO_UPDATE.json")
    payload["o"] |= {"o": "TRAILING_STOP_MARKET", "X": "TRIGGERED", "ai": "8886774", "ia": True}
    for key in ("ap", "aq", "act", "rm", "cp"):  # "only display when ..." fields may be absent
        del payload["o"][key]
    event = parse(USDM, payload)
    assert isinstance(event, AlgoUpdate)
    assert (event.order_id, event.activated, event.average_price) == (8886774, True, None)
    assert event.close_all is None and event.extra == {}


def test_an_algo_update_with_a_retyped_field_is_refused() -> None:
    payload = vector("usdm-user/ALGO_UPDATE.json")
    payload["o"]["aid"] = "2148719"
    with pytest.raises(MessageParseError):
        parse(USDM, payload)


def test_conditional_order_trigger_reject_still_parses() -> None:
    event = parse(USDM, vector("usdm-user/CONDITIONAL_ORDER_TRIGGER_REJECT.json"))
    assert isinstance(event, ConditionalOrderTriggerReject)
    assert (event.symbol, event.order_id) == ("ETHUSDT", 155618472834)
    assert event.reject_reason.startswith("Due to the order could not be filled immediately")


@pytest.mark.parametrize(("parser", "group"), [(USDM, "usdm_user"), (COINM, "coinm_user")])
def test_grid_and_strategy_updates_on_both_futures_markets(parser: FrameParser, group: str) -> None:
    market = group.removesuffix("_user")
    grid = parse(parser, vector(f"{market}-user/GRID_UPDATE.json"))
    assert isinstance(grid, GridUpdate) and grid.schema_group == group
    assert (grid.strategy_id, grid.strategy_type, grid.strategy_status) == (
        176057039,
        "GRID",
        "WORKING",
    )
    assert (grid.realized_pnl, grid.unmatched_quantity) == (
        Decimal("-0.00300716"),
        Decimal("-0.001"),
    )
    assert grid.update_time_us == 1669262908197000
    strategy = parse(parser, vector(f"{market}-user/STRATEGY_UPDATE.json"))
    assert isinstance(strategy, StrategyUpdate) and strategy.schema_group == group
    assert (strategy.op_code, strategy.strategy_status, strategy.symbol) == (8007, "NEW", "BTCUSDT")


def test_algo_events_are_usdm_only() -> None:
    with pytest.raises(MessageParseError, match="unknown event type 'ALGO_UPDATE'"):
        parse(COINM, vector("usdm-user/ALGO_UPDATE.json"))


def test_account_update_names_the_symbol_of_a_funding_fee() -> None:
    payload = vector("usdm-user/ACCOUNT_UPDATE.json")
    payload["a"] |= {"m": "FUNDING_FEE", "S": "BTCUSDT"}
    event = parse(USDM, payload)
    assert isinstance(event, AccountUpdate)
    assert (event.reason, event.funding_fee_symbol) == ("FUNDING_FEE", "BTCUSDT")
    assert "a.S" not in event.extra
    event = parse(USDM, vector("usdm-user/ACCOUNT_UPDATE.json"))
    assert isinstance(event, AccountUpdate)
    assert event.funding_fee_symbol is None
