"""Futures user data beyond plain orders: algo (conditional) orders and grid strategies.

Since 2025-12-09 USD-M stop, take-profit and trailing orders live in Binance's Algo Service and
report as ``ALGO_UPDATE``; ``CONDITIONAL_ORDER_TRIGGER_REJECT`` (deprecated 2025-12-15) may still
arrive; ``GRID_UPDATE`` and ``STRATEGY_UPDATE`` report grid strategies (USD-M and COIN-M). Fields
and examples: docs/futures-merger.md §3, ``tests/data/binance/usdm-user/``.

Binance marks most algo-order fields as sent only in some states ("only display when order is
triggered"), so everything but the order's identity is optional: a protective order's update is
never dead-lettered for a field Binance chose to leave out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from decimal import Decimal
from typing import ClassVar, TypedDict

from gateway.binance.events.base import (
    Context,
    Fields,
    Payload,
    Publishable,
    any_text,
    boolean,
    decimal,
    event_class,
    integer,
    merged,
    optional,
    optional_time_us,
    text,
    time_us,
)
from gateway.binance.events.futures_user import futures_user_header


@event_class
class AlgoUpdate(Publishable):
    """An algo (conditional) order was placed, triggered, finished or cancelled (``ALGO_UPDATE``);
    ``o`` is flattened."""

    KIND: ClassVar[str] = "algo_update"
    ACCOUNT: ClassVar[bool] = True

    market: str
    subscription_id: int | None
    event_time_us: int
    transaction_time_us: int
    client_algo_id: str
    algo_id: int
    algo_type: str
    order_type: str
    symbol: str
    side: str
    position_side: str | None
    time_in_force: str | None
    quantity: Decimal | None
    algo_status: str
    order_id: int | None
    average_price: Decimal | None
    executed_quantity: Decimal | None
    actual_order_type: str | None
    trigger_price: Decimal | None
    price: Decimal | None
    self_trade_prevention_mode: str | None
    working_type: str | None
    price_match_mode: str | None
    close_all: bool | None
    price_protection: bool | None
    reduce_only: bool | None
    trigger_time_us: int | None
    good_till_time_us: int | None
    failure_reason: str | None
    activated: bool | None
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class ConditionalOrderTriggerReject(Publishable):
    """A triggered conditional order was rejected (``CONDITIONAL_ORDER_TRIGGER_REJECT``)."""

    KIND: ClassVar[str] = "conditional_order_trigger_reject"
    ACCOUNT: ClassVar[bool] = True

    market: str
    subscription_id: int | None
    event_time_us: int
    transaction_time_us: int
    symbol: str
    order_id: int
    reject_reason: str
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class GridUpdate(Publishable):
    """A grid strategy's sub-order filled, partly or fully (``GRID_UPDATE``); ``gu`` flattened."""

    KIND: ClassVar[str] = "grid_update"
    ACCOUNT: ClassVar[bool] = True

    market: str
    subscription_id: int | None
    event_time_us: int
    transaction_time_us: int
    strategy_id: int
    strategy_type: str
    strategy_status: str
    symbol: str
    realized_pnl: Decimal
    unmatched_average_price: Decimal
    unmatched_quantity: Decimal
    unmatched_fee: Decimal
    matched_pnl: Decimal
    update_time_us: int
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class StrategyUpdate(Publishable):
    """A strategy was created, changed, cancelled or expired (``STRATEGY_UPDATE``); ``su``
    flattened."""

    KIND: ClassVar[str] = "strategy_update"
    ACCOUNT: ClassVar[bool] = True

    market: str
    subscription_id: int | None
    event_time_us: int
    transaction_time_us: int
    strategy_id: int
    strategy_type: str
    strategy_status: str
    symbol: str
    update_time_us: int
    op_code: int
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


_ALGO = Fields()
_ALGO_ORDER = Fields("o")
_REJECT = Fields()
_REJECTED = Fields("or")
_GRID = Fields()
_GRID_BODY = Fields("gu")
_STRATEGY = Fields()
_STRATEGY_BODY = Fields("su")


class _Strategy(TypedDict):
    strategy_id: int
    strategy_type: str
    strategy_status: str
    symbol: str
    update_time_us: int


def _strategy(strategy: Payload, prefix: str, ctx: Context) -> _Strategy:
    """The strategy a ``GRID_UPDATE`` (``gu``) or ``STRATEGY_UPDATE`` (``su``) is about."""
    return _Strategy(
        strategy_id=integer(strategy["si"], f"{prefix}si"),
        strategy_type=text(strategy["st"], f"{prefix}st"),
        strategy_status=text(strategy["ss"], f"{prefix}ss"),
        symbol=text(strategy["s"], f"{prefix}s"),
        update_time_us=time_us(strategy["ut"], f"{prefix}ut", ctx),
    )


def _order_id(value: object, name: str) -> int | None:
    """``o.ai``: the matching-engine order id as a digit string, ``""`` until triggered."""
    if value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return integer(int(value), name)
    return integer(value, name)


def parse_algo_update(payload: Payload, ctx: Context) -> AlgoUpdate:
    payload = _ALGO.view(payload)
    order = _ALGO_ORDER.view_in(payload)
    return AlgoUpdate(
        **futures_user_header(payload, ctx),
        client_algo_id=any_text(order["caid"], "o.caid"),
        algo_id=integer(order["aid"], "o.aid"),
        algo_type=text(order["at"], "o.at"),
        order_type=text(order["o"], "o.o"),
        symbol=text(order["s"], "o.s"),
        side=text(order["S"], "o.S"),
        position_side=optional(order, "ps", text),
        time_in_force=optional(order, "f", text),
        quantity=optional(order, "q", decimal),
        algo_status=text(order["X"], "o.X"),
        order_id=optional(order, "ai", _order_id),
        average_price=optional(order, "ap", decimal),
        executed_quantity=optional(order, "aq", decimal),
        actual_order_type=optional(order, "act", any_text),
        trigger_price=optional(order, "tp", decimal),
        price=optional(order, "p", decimal),
        self_trade_prevention_mode=optional(order, "V", text),
        working_type=optional(order, "wt", text),
        price_match_mode=optional(order, "pm", text),
        close_all=optional(order, "cp", boolean),
        price_protection=optional(order, "pP", boolean),
        reduce_only=optional(order, "R", boolean),
        trigger_time_us=optional_time_us(order, "tt", ctx),
        good_till_time_us=optional_time_us(order, "gtd", ctx),
        failure_reason=optional(order, "rm", any_text),
        activated=optional(order, "ia", boolean),
        received_at_us=ctx.received_at_us,
        extra=merged(_ALGO.unread(payload), _ALGO_ORDER.unread(order)),
    )


def parse_conditional_order_trigger_reject(
    payload: Payload, ctx: Context
) -> ConditionalOrderTriggerReject:
    payload = _REJECT.view(payload)
    rejected = _REJECTED.view_in(payload)
    return ConditionalOrderTriggerReject(
        **futures_user_header(payload, ctx),
        symbol=text(rejected["s"], "or.s"),
        order_id=integer(rejected["i"], "or.i"),
        reject_reason=any_text(rejected["r"], "or.r"),
        received_at_us=ctx.received_at_us,
        extra=merged(_REJECT.unread(payload), _REJECTED.unread(rejected)),
    )


def parse_grid_update(payload: Payload, ctx: Context) -> GridUpdate:
    payload = _GRID.view(payload)
    grid = _GRID_BODY.view_in(payload)
    return GridUpdate(
        **futures_user_header(payload, ctx),
        **_strategy(grid, "gu.", ctx),
        realized_pnl=decimal(grid["r"], "gu.r"),
        unmatched_average_price=decimal(grid["up"], "gu.up"),
        unmatched_quantity=decimal(grid["uq"], "gu.uq"),
        unmatched_fee=decimal(grid["uf"], "gu.uf"),
        matched_pnl=decimal(grid["mp"], "gu.mp"),
        received_at_us=ctx.received_at_us,
        extra=merged(_GRID.unread(payload), _GRID_BODY.unread(grid)),
    )


def parse_strategy_update(payload: Payload, ctx: Context) -> StrategyUpdate:
    payload = _STRATEGY.view(payload)
    strategy = _STRATEGY_BODY.view_in(payload)
    return StrategyUpdate(
        **futures_user_header(payload, ctx),
        **_strategy(strategy, "su.", ctx),
        op_code=integer(strategy["c"], "su.c"),
        received_at_us=ctx.received_at_us,
        extra=merged(_STRATEGY.unread(payload), _STRATEGY_BODY.unread(strategy)),
    )
