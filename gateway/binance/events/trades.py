"""Trades: ``trade``, ``aggTrade``, ``blockTrade`` and liquidations (``forceOrder``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import ClassVar

from gateway.binance.events.base import (
    Context,
    Fields,
    Payload,
    Publishable,
    Scaled,
    boolean,
    contract_market,
    event_class,
    integer,
    merged,
    optional,
    scaled,
    symbol_type,
    text,
    time_us,
)


@event_class
class Trade(Publishable):
    """One trade (``<symbol>@trade``): spot, and the futures stream Binance serves undocumented
    (docs/binance-streams.md), which adds ``X`` (``trade_type``) and drops ``M``."""

    KIND: ClassVar[str] = "trade"

    market: str
    symbol: str
    event_time_us: int
    trade_id: int
    price: Scaled
    quantity: Scaled
    trade_time_us: int
    buyer_is_maker: bool
    best_match: bool | None
    trade_type: str | None
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class AggTrade(Publishable):
    """Trades of one taker order at one price (``<symbol>@aggTrade``), every market."""

    KIND: ClassVar[str] = "agg_trade"

    market: str
    symbol: str
    event_time_us: int
    agg_trade_id: int
    price: Scaled
    quantity: Scaled
    normal_quantity: Scaled | None
    first_trade_id: int
    last_trade_id: int
    trade_time_us: int
    buyer_is_maker: bool
    best_match: bool | None
    symbol_type: int | None = field(default=None, kw_only=True)
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class BlockTrade(Publishable):
    """One spot block trade (``<symbol>@blockTrade``)."""

    KIND: ClassVar[str] = "block_trade"

    market: str
    symbol: str
    event_time_us: int
    block_trade_id: int
    price: Scaled
    quantity: Scaled
    trade_time_us: int
    buyer_is_maker: bool
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class ForceOrder(Publishable):
    """A liquidation order (``<symbol>@forceOrder``, ``!forceOrder@arr``); ``o`` is flattened."""

    KIND: ClassVar[str] = "force_order"

    market: str
    symbol: str
    pair: str | None
    event_time_us: int
    side: str
    order_type: str
    time_in_force: str
    quantity: Scaled
    price: Scaled
    average_price: Scaled
    order_status: str
    last_filled_quantity: Scaled
    filled_quantity: Scaled
    trade_time_us: int
    symbol_type: int | None = field(default=None, kw_only=True)
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


_TRADE = Fields()
_AGG_TRADE = Fields()
_BLOCK_TRADE = Fields()
_FORCE_ORDER = Fields()
_FORCE_ORDER_INNER = Fields("o")


def parse_trade(payload: Payload, ctx: Context) -> Trade:
    payload = _TRADE.view(payload)
    return Trade(
        market=ctx.market,
        symbol=text(payload["s"], "s"),
        event_time_us=time_us(payload["E"], "E", ctx),
        trade_id=integer(payload["t"], "t"),
        price=scaled(payload["p"], "p"),
        quantity=scaled(payload["q"], "q"),
        trade_time_us=time_us(payload["T"], "T", ctx),
        buyer_is_maker=boolean(payload["m"], "m"),
        best_match=optional(payload, "M", boolean),
        trade_type=optional(payload, "X", text),
        received_at_us=ctx.received_at_us,
        extra=_TRADE.unread(payload),
    )


def parse_agg_trade(payload: Payload, ctx: Context) -> AggTrade:
    payload = _AGG_TRADE.view(payload)
    kind = symbol_type(payload)
    return AggTrade(
        market=contract_market(kind, ctx),
        symbol=text(payload["s"], "s"),
        event_time_us=time_us(payload["E"], "E", ctx),
        agg_trade_id=integer(payload["a"], "a"),
        price=scaled(payload["p"], "p"),
        quantity=scaled(payload["q"], "q"),
        normal_quantity=optional(payload, "nq", scaled),
        first_trade_id=integer(payload["f"], "f"),
        last_trade_id=integer(payload["l"], "l"),
        trade_time_us=time_us(payload["T"], "T", ctx),
        buyer_is_maker=boolean(payload["m"], "m"),
        best_match=optional(payload, "M", boolean),
        symbol_type=kind,
        received_at_us=ctx.received_at_us,
        extra=_AGG_TRADE.unread(payload),
    )


def parse_block_trade(payload: Payload, ctx: Context) -> BlockTrade:
    payload = _BLOCK_TRADE.view(payload)
    return BlockTrade(
        market=ctx.market,
        symbol=text(payload["s"], "s"),
        event_time_us=time_us(payload["E"], "E", ctx),
        block_trade_id=integer(payload["t"], "t"),
        price=scaled(payload["p"], "p"),
        quantity=scaled(payload["q"], "q"),
        trade_time_us=time_us(payload["T"], "T", ctx),
        buyer_is_maker=boolean(payload["m"], "m"),
        received_at_us=ctx.received_at_us,
        extra=_BLOCK_TRADE.unread(payload),
    )


def parse_force_order(payload: Payload, ctx: Context) -> ForceOrder:
    payload = _FORCE_ORDER.view(payload)
    order = _FORCE_ORDER_INNER.view_in(payload)
    kind = symbol_type(payload)
    # Since 2026-06-30 the pair and symbol type of !forceOrder@arr sit beside "o", not in it.
    # Both read, so the keys the parser asks for do not depend on which one is sent.
    inner_pair, outer_pair = optional(order, "ps", text), optional(payload, "ps", text)
    return ForceOrder(
        market=contract_market(kind, ctx),
        symbol=text(order["s"], "o.s"),
        pair=inner_pair or outer_pair,
        event_time_us=time_us(payload["E"], "E", ctx),
        side=text(order["S"], "o.S"),
        order_type=text(order["o"], "o.o"),
        time_in_force=text(order["f"], "o.f"),
        quantity=scaled(order["q"], "o.q"),
        price=scaled(order["p"], "o.p"),
        average_price=scaled(order["ap"], "o.ap"),
        order_status=text(order["X"], "o.X"),
        last_filled_quantity=scaled(order["l"], "o.l"),
        filled_quantity=scaled(order["z"], "o.z"),
        trade_time_us=time_us(order["T"], "o.T", ctx),
        symbol_type=kind,
        received_at_us=ctx.received_at_us,
        extra=merged(_FORCE_ORDER.unread(payload), _FORCE_ORDER_INNER.unread(order)),
    )
