"""Futures reference data: mark and index prices, composite and asset indexes, contract info,
trading sessions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from decimal import Decimal
from typing import ClassVar

from gateway.binance.events.base import (
    Context,
    Fields,
    Payload,
    Publishable,
    Scaled,
    array,
    contract_market,
    decimal,
    event_class,
    integer,
    merged,
    number,
    obj,
    optional,
    scaled,
    scaled_or_null,
    symbol_type,
    text,
    time_us,
)


@event_class
class MarkPrice(Publishable):
    """Mark price and funding (``<symbol>@markPrice``, ``!markPrice@arr``, COIN-M per pair)."""

    KIND: ClassVar[str] = "mark_price"

    market: str
    symbol: str
    event_time_us: int
    mark_price: Scaled
    index_price: Scaled
    estimated_settle_price: Scaled
    funding_rate: Scaled | None
    next_funding_time_us: int
    mark_price_moving_average: Scaled | None = field(default=None, kw_only=True)
    symbol_type: int | None = field(default=None, kw_only=True)
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class IndexPrice(Publishable):
    """COIN-M index price of a pair (``<pair>@indexPrice``)."""

    KIND: ClassVar[str] = "index_price"
    KEY_FIELD: ClassVar[str | None] = "pair"

    market: str
    pair: str
    event_time_us: int
    index_price: Scaled
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class IndexComponent:
    """One constituent of a composite index."""

    base_asset: str
    quote_asset: str
    weight_quantity: Decimal
    weight_percent: Decimal
    index_price: Decimal


@event_class
class CompositeIndex(Publishable):
    """USD-M composite index and its composition (``<symbol>@compositeIndex``)."""

    KIND: ClassVar[str] = "composite_index"

    market: str
    symbol: str
    event_time_us: int
    price: Decimal
    composition_basis: str | None
    components: Sequence[IndexComponent]
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class NotionalBracket:
    """One leverage bracket of a contract."""

    bracket: int
    floor_notional: Decimal
    cap_notional: Decimal
    maintenance_ratio: Decimal
    auxiliary_number: Decimal
    min_leverage: int
    max_leverage: int


@event_class
class ContractInfo(Publishable):
    """A contract listed, changed or delisted (``!contractInfo``)."""

    KIND: ClassVar[str] = "contract_info"

    market: str
    symbol: str
    pair: str | None
    event_time_us: int
    contract_type: str
    delivery_time_us: int
    onboard_time_us: int
    contract_status: str
    brackets: Sequence[NotionalBracket] | None
    symbol_type: int | None = field(default=None, kw_only=True)
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class AssetIndex(Publishable):
    """USD-M multi-assets mode asset index (``!assetIndex@arr``, ``<asset>@assetIndex``)."""

    KIND: ClassVar[str] = "asset_index"

    market: str
    symbol: str
    event_time_us: int
    index_price: Decimal
    bid_buffer: Decimal
    ask_buffer: Decimal
    bid_rate: Decimal
    ask_rate: Decimal
    auto_exchange_bid_buffer: Decimal
    auto_exchange_ask_buffer: Decimal
    auto_exchange_bid_rate: Decimal
    auto_exchange_ask_rate: Decimal
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class TradingSession(Publishable):
    """USD-M TradFi trading session (``tradingSession``); keyed by its event type."""

    KIND: ClassVar[str] = "trading_session"
    KEY_FIELD: ClassVar[str | None] = "session_market"

    market: str
    session_market: str
    event_time_us: int
    start_time_us: int
    end_time_us: int
    session_type: str
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


_MARK_PRICE = Fields()
_INDEX_PRICE = Fields()
_COMPOSITE = Fields()
_COMPONENT = Fields(event=False)
_CONTRACT = Fields()
_BRACKET = Fields(event=False)
_ASSET_INDEX = Fields()
_SESSION = Fields()


def parse_mark_price(payload: Payload, ctx: Context) -> MarkPrice:
    payload = _MARK_PRICE.view(payload)
    kind = symbol_type(payload)
    return MarkPrice(
        market=contract_market(kind, ctx),
        symbol=text(payload["s"], "s"),
        event_time_us=time_us(payload["E"], "E", ctx),
        mark_price=scaled(payload["p"], "p"),
        index_price=scaled(payload["i"], "i"),
        estimated_settle_price=scaled(payload["P"], "P"),
        funding_rate=scaled_or_null(payload["r"], "r"),
        next_funding_time_us=time_us(payload["T"], "T", ctx),
        mark_price_moving_average=optional(payload, "ap", scaled),
        symbol_type=kind,
        received_at_us=ctx.received_at_us,
        extra=_MARK_PRICE.unread(payload),
    )


def parse_index_price(payload: Payload, ctx: Context) -> IndexPrice:
    payload = _INDEX_PRICE.view(payload)
    return IndexPrice(
        market=ctx.market,
        pair=text(payload["i"], "i"),
        event_time_us=time_us(payload["E"], "E", ctx),
        index_price=scaled(payload["p"], "p"),
        received_at_us=ctx.received_at_us,
        extra=_INDEX_PRICE.unread(payload),
    )


def _component(item: object, index: int) -> tuple[IndexComponent, dict[str, str]]:
    name = f"c[{index}]"
    value = _COMPONENT.view(obj(item, name))
    component = IndexComponent(
        base_asset=text(value["b"], f"{name}.b"),
        quote_asset=text(value["q"], f"{name}.q"),
        weight_quantity=decimal(value["w"], f"{name}.w"),
        weight_percent=decimal(value["W"], f"{name}.W"),
        index_price=decimal(value["i"], f"{name}.i"),
    )
    return component, _COMPONENT.unread(value, f"{name}.")


def parse_composite_index(payload: Payload, ctx: Context) -> CompositeIndex:
    payload = _COMPOSITE.view(payload)
    parsed = [_component(item, i) for i, item in enumerate(array(payload["c"], "c"))]
    return CompositeIndex(
        market=ctx.market,
        symbol=text(payload["s"], "s"),
        event_time_us=time_us(payload["E"], "E", ctx),
        price=decimal(payload["p"], "p"),
        composition_basis=optional(payload, "C", text),
        components=[component for component, _ in parsed],
        received_at_us=ctx.received_at_us,
        extra=merged(_COMPOSITE.unread(payload), *(unknown for _, unknown in parsed)),
    )


def _bracket(item: object, index: int) -> tuple[NotionalBracket, dict[str, str]]:
    name = f"bks[{index}]"
    value = _BRACKET.view(obj(item, name))
    bracket = NotionalBracket(
        bracket=integer(value["bs"], f"{name}.bs"),
        floor_notional=number(value["bnf"], f"{name}.bnf"),
        cap_notional=number(value["bnc"], f"{name}.bnc"),
        maintenance_ratio=number(value["mmr"], f"{name}.mmr"),
        auxiliary_number=number(value["cf"], f"{name}.cf"),
        min_leverage=integer(value["mi"], f"{name}.mi"),
        max_leverage=integer(value["ma"], f"{name}.ma"),
    )
    return bracket, _BRACKET.unread(value, f"{name}.")


def parse_contract_info(payload: Payload, ctx: Context) -> ContractInfo:
    payload = _CONTRACT.view(payload)
    # "bks" is only sent when the brackets change: absent means "unchanged", not "none".
    parsed = [_bracket(item, i) for i, item in enumerate(array(payload.get("bks", []), "bks"))]
    kind = symbol_type(payload)
    return ContractInfo(
        market=contract_market(kind, ctx),
        symbol=text(payload["s"], "s"),
        # USD-M dropped "ps" from !contractInfo with the 2026-06-30 integration (SDK 12.0.0).
        pair=optional(payload, "ps", text),
        event_time_us=time_us(payload["E"], "E", ctx),
        contract_type=text(payload["ct"], "ct"),
        delivery_time_us=time_us(payload["dt"], "dt", ctx),
        onboard_time_us=time_us(payload["ot"], "ot", ctx),
        contract_status=text(payload["cs"], "cs"),
        brackets=[bracket for bracket, _ in parsed] if "bks" in payload else None,
        symbol_type=kind,
        received_at_us=ctx.received_at_us,
        extra=merged(_CONTRACT.unread(payload), *(unknown for _, unknown in parsed)),
    )


def parse_asset_index(payload: Payload, ctx: Context) -> AssetIndex:
    payload = _ASSET_INDEX.view(payload)
    return AssetIndex(
        market=ctx.market,
        symbol=text(payload["s"], "s"),
        event_time_us=time_us(payload["E"], "E", ctx),
        index_price=decimal(payload["i"], "i"),
        bid_buffer=decimal(payload["b"], "b"),
        ask_buffer=decimal(payload["a"], "a"),
        bid_rate=decimal(payload["B"], "B"),
        ask_rate=decimal(payload["A"], "A"),
        auto_exchange_bid_buffer=decimal(payload["q"], "q"),
        auto_exchange_ask_buffer=decimal(payload["g"], "g"),
        auto_exchange_bid_rate=decimal(payload["Q"], "Q"),
        auto_exchange_ask_rate=decimal(payload["G"], "G"),
        received_at_us=ctx.received_at_us,
        extra=_ASSET_INDEX.unread(payload),
    )


def parse_trading_session(payload: Payload, ctx: Context) -> TradingSession:
    payload = _SESSION.view(payload)
    event_type = text(payload["e"], "e")
    return TradingSession(
        market=ctx.market,
        session_market=event_type.removesuffix("Update"),  # "EquityUpdate" -> "Equity"
        event_time_us=time_us(payload["E"], "E", ctx),
        start_time_us=time_us(payload["t"], "t", ctx),
        end_time_us=time_us(payload["T"], "T", ctx),
        session_type=text(payload["S"], "S"),
        received_at_us=ctx.received_at_us,
        extra=_SESSION.unread(payload),
    )
