"""USD-M and COIN-M user data: account and position updates, margin calls, orders, config.

One class per event for both futures markets; COIN-M's extras (account alias ``i``, margin asset
``o.ma`` on order updates) are optional fields. ``listenKeyExpired`` is shared with spot
(:class:`~gateway.binance.events.spot_user.ListenKeyExpired`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from decimal import Decimal
from typing import ClassVar, TypedDict

from gateway.binance.events.base import (
    Context,
    Fields,
    Payload,
    Publishable,
    any_text,
    array,
    boolean,
    decimal,
    event_class,
    integer,
    merged,
    obj,
    optional,
    optional_time_us,
    text,
    time_us,
)


@event_class
class WalletBalance:
    """One asset's wallet after an account update."""

    asset: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    balance_change: Decimal | None


@event_class
class PositionUpdate:
    """One position after an account update."""

    symbol: str
    position_amount: Decimal
    entry_price: Decimal
    breakeven_price: Decimal | None
    accumulated_realized: Decimal
    unrealized_pnl: Decimal
    margin_type: str
    isolated_wallet: Decimal
    position_side: str


@event_class
class AccountUpdate(Publishable):
    """Balances and positions changed (``ACCOUNT_UPDATE``); ``a`` is flattened."""

    KIND: ClassVar[str] = "account_update"
    ACCOUNT: ClassVar[bool] = True
    KEY_FIELD: ClassVar[str | None] = None

    market: str
    subscription_id: int | None
    event_time_us: int
    transaction_time_us: int
    reason: str
    balances: Sequence[WalletBalance]
    positions: Sequence[PositionUpdate]
    funding_fee_symbol: str | None = field(default=None, kw_only=True)
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class MarginCallPosition:
    """One position in a margin call."""

    symbol: str
    position_side: str
    position_amount: Decimal
    margin_type: str
    isolated_wallet: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    maintenance_margin: Decimal


@event_class
class MarginCall(Publishable):
    """Positions at risk of liquidation (``MARGIN_CALL``)."""

    KIND: ClassVar[str] = "margin_call"
    ACCOUNT: ClassVar[bool] = True
    KEY_FIELD: ClassVar[str | None] = None

    market: str
    subscription_id: int | None
    event_time_us: int
    cross_wallet_balance: Decimal | None
    positions: Sequence[MarginCallPosition]
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class OrderTradeUpdate(Publishable):
    """An order changed or traded (``ORDER_TRADE_UPDATE``); ``o`` is flattened."""

    KIND: ClassVar[str] = "order_trade_update"
    ACCOUNT: ClassVar[bool] = True

    market: str
    subscription_id: int | None
    account_alias: str | None
    event_time_us: int
    transaction_time_us: int
    symbol: str
    client_order_id: str
    side: str
    order_type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    average_price: Decimal
    stop_price: Decimal
    execution_type: str
    order_status: str
    order_id: int
    last_quantity: Decimal
    cumulative_quantity: Decimal
    last_price: Decimal
    commission_asset: str | None
    commission: Decimal | None
    trade_time_us: int
    trade_id: int
    bid_notional: Decimal
    ask_notional: Decimal
    maker: bool
    reduce_only: bool
    working_type: str
    original_order_type: str
    position_side: str
    close_all: bool
    activation_price: Decimal | None
    callback_rate: Decimal | None
    price_protection: bool | None
    realized_profit: Decimal
    self_trade_prevention_mode: str | None
    price_match_mode: str | None
    good_till_time_us: int | None
    expiry_reason: str | None
    margin_asset: str | None
    ignored: Mapping[str, str]
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class AccountConfigUpdate(Publishable):
    """Leverage of a symbol, or multi-assets mode, changed (``ACCOUNT_CONFIG_UPDATE``)."""

    KIND: ClassVar[str] = "account_config_update"
    ACCOUNT: ClassVar[bool] = True

    market: str
    subscription_id: int | None
    event_time_us: int
    transaction_time_us: int
    symbol: str | None
    leverage: int | None
    multi_assets_mode: bool | None
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class TradeLite(Publishable):
    """A fill, reported faster and leaner than ORDER_TRADE_UPDATE (``TRADE_LITE``)."""

    KIND: ClassVar[str] = "trade_lite"
    ACCOUNT: ClassVar[bool] = True

    market: str
    subscription_id: int | None
    event_time_us: int
    transaction_time_us: int
    symbol: str
    quantity: Decimal
    price: Decimal
    maker: bool
    client_order_id: str
    side: str
    last_price: Decimal
    last_quantity: Decimal
    trade_id: int
    order_id: int
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


_ACCOUNT_UPDATE = Fields()
_ACCOUNT_DATA = Fields("a")
_WALLET = Fields(event=False)
_POSITION = Fields(event=False)
_MARGIN_CALL = Fields()
_MARGIN_POSITION = Fields(event=False)
_ORDER_UPDATE = Fields()
# "o.si" and "o.ss" are documented as "Ignore"; "o.ma" is sent by COIN-M only.
_ORDER = Fields("o", ignored=["si", "ss"])
_CONFIG = Fields()
_LEVERAGE = Fields("ac", optional=True)
_MULTI_ASSETS = Fields("ai", optional=True)
_TRADE_LITE = Fields()


class FuturesUserHeader(TypedDict):
    """What every futures user event starts with."""

    market: str
    subscription_id: int | None
    event_time_us: int
    transaction_time_us: int


def futures_user_header(payload: Payload, ctx: Context) -> FuturesUserHeader:
    """The market, account and times of a futures user event (``E``, ``T``)."""
    return FuturesUserHeader(
        market=ctx.market,
        subscription_id=ctx.subscription_id,
        # The ALGO_UPDATE doc example's comments swap E and T; E is the event time as in every
        # other event (Binance's SDK model: "E": Event Time, "T": Transaction Time).
        event_time_us=time_us(payload["E"], "E", ctx),
        transaction_time_us=time_us(payload["T"], "T", ctx),
    )


def _wallet(item: object, index: int) -> tuple[WalletBalance, dict[str, str]]:
    name = f"a.B[{index}]"
    value = _WALLET.view(obj(item, name))
    wallet = WalletBalance(
        asset=text(value["a"], f"{name}.a"),
        wallet_balance=decimal(value["wb"], f"{name}.wb"),
        cross_wallet_balance=decimal(value["cw"], f"{name}.cw"),
        balance_change=optional(value, "bc", decimal),
    )
    return wallet, _WALLET.unread(value, f"{name}.")


def _position(item: object, index: int) -> tuple[PositionUpdate, dict[str, str]]:
    name = f"a.P[{index}]"
    value = _POSITION.view(obj(item, name))
    position = PositionUpdate(
        symbol=text(value["s"], f"{name}.s"),
        position_amount=decimal(value["pa"], f"{name}.pa"),
        entry_price=decimal(value["ep"], f"{name}.ep"),
        breakeven_price=optional(value, "bep", decimal),
        accumulated_realized=decimal(value["cr"], f"{name}.cr"),
        unrealized_pnl=decimal(value["up"], f"{name}.up"),
        margin_type=text(value["mt"], f"{name}.mt"),
        isolated_wallet=decimal(value["iw"], f"{name}.iw"),
        position_side=text(value["ps"], f"{name}.ps"),
    )
    return position, _POSITION.unread(value, f"{name}.")


def parse_account_update(payload: Payload, ctx: Context) -> AccountUpdate:
    payload = _ACCOUNT_UPDATE.view(payload)
    data = _ACCOUNT_DATA.view_in(payload)
    wallets = [_wallet(item, i) for i, item in enumerate(array(data.get("B", []), "a.B"))]
    positions = [_position(item, i) for i, item in enumerate(array(data.get("P", []), "a.P"))]
    return AccountUpdate(
        **futures_user_header(payload, ctx),
        reason=text(data["m"], "a.m"),
        balances=[wallet for wallet, _ in wallets],
        positions=[position for position, _ in positions],
        funding_fee_symbol=optional(data, "S", text),
        received_at_us=ctx.received_at_us,
        extra=merged(
            _ACCOUNT_UPDATE.unread(payload),
            _ACCOUNT_DATA.unread(data),
            *(unknown for _, unknown in wallets),
            *(unknown for _, unknown in positions),
        ),
    )


def _margin_position(item: object, index: int) -> tuple[MarginCallPosition, dict[str, str]]:
    name = f"p[{index}]"
    value = _MARGIN_POSITION.view(obj(item, name))
    position = MarginCallPosition(
        symbol=text(value["s"], f"{name}.s"),
        position_side=text(value["ps"], f"{name}.ps"),
        position_amount=decimal(value["pa"], f"{name}.pa"),
        margin_type=text(value["mt"], f"{name}.mt"),
        isolated_wallet=decimal(value["iw"], f"{name}.iw"),
        mark_price=decimal(value["mp"], f"{name}.mp"),
        unrealized_pnl=decimal(value["up"], f"{name}.up"),
        maintenance_margin=decimal(value["mm"], f"{name}.mm"),
    )
    return position, _MARGIN_POSITION.unread(value, f"{name}.")


def parse_margin_call(payload: Payload, ctx: Context) -> MarginCall:
    payload = _MARGIN_CALL.view(payload)
    parsed = [_margin_position(item, i) for i, item in enumerate(array(payload["p"], "p"))]
    return MarginCall(
        market=ctx.market,
        subscription_id=ctx.subscription_id,
        event_time_us=time_us(payload["E"], "E", ctx),
        cross_wallet_balance=optional(payload, "cw", decimal),
        positions=[position for position, _ in parsed],
        received_at_us=ctx.received_at_us,
        extra=merged(_MARGIN_CALL.unread(payload), *(unknown for _, unknown in parsed)),
    )


def parse_order_trade_update(payload: Payload, ctx: Context) -> OrderTradeUpdate:
    payload = _ORDER_UPDATE.view(payload)
    order = _ORDER.view_in(payload)
    return OrderTradeUpdate(
        **futures_user_header(payload, ctx),
        account_alias=optional(payload, "i", text),
        symbol=text(order["s"], "o.s"),
        client_order_id=any_text(order["c"], "o.c"),
        side=text(order["S"], "o.S"),
        order_type=text(order["o"], "o.o"),
        time_in_force=text(order["f"], "o.f"),
        quantity=decimal(order["q"], "o.q"),
        price=decimal(order["p"], "o.p"),
        average_price=decimal(order["ap"], "o.ap"),
        stop_price=decimal(order["sp"], "o.sp"),
        execution_type=text(order["x"], "o.x"),
        order_status=text(order["X"], "o.X"),
        order_id=integer(order["i"], "o.i"),
        last_quantity=decimal(order["l"], "o.l"),
        cumulative_quantity=decimal(order["z"], "o.z"),
        last_price=decimal(order["L"], "o.L"),
        commission_asset=optional(order, "N", text),
        commission=optional(order, "n", decimal),
        trade_time_us=time_us(order["T"], "o.T", ctx),
        trade_id=integer(order["t"], "o.t"),
        bid_notional=decimal(order["b"], "o.b"),
        ask_notional=decimal(order["a"], "o.a"),
        maker=boolean(order["m"], "o.m"),
        reduce_only=boolean(order["R"], "o.R"),
        working_type=text(order["wt"], "o.wt"),
        original_order_type=text(order["ot"], "o.ot"),
        position_side=text(order["ps"], "o.ps"),
        close_all=boolean(order["cp"], "o.cp"),
        activation_price=optional(order, "AP", decimal),
        callback_rate=optional(order, "cr", decimal),
        price_protection=optional(order, "pP", boolean),
        realized_profit=decimal(order["rp"], "o.rp"),
        self_trade_prevention_mode=optional(order, "V", text),
        price_match_mode=optional(order, "pm", text),
        good_till_time_us=optional_time_us(order, "gtd", ctx),
        expiry_reason=optional(order, "er", any_text),
        margin_asset=optional(order, "ma", text),
        ignored=_ORDER.ignored(order),
        received_at_us=ctx.received_at_us,
        extra=merged(_ORDER_UPDATE.unread(payload), _ORDER.unread(order)),
    )


def parse_account_config_update(payload: Payload, ctx: Context) -> AccountConfigUpdate:
    payload = _CONFIG.view(payload)
    leverage = _LEVERAGE.view_in(payload)
    multi_assets = _MULTI_ASSETS.view_in(payload)
    return AccountConfigUpdate(
        **futures_user_header(payload, ctx),
        symbol=optional(leverage, "s", text),
        leverage=optional(leverage, "l", integer),
        multi_assets_mode=optional(multi_assets, "j", boolean),
        received_at_us=ctx.received_at_us,
        extra=merged(
            _CONFIG.unread(payload),
            _LEVERAGE.unread(leverage),
            _MULTI_ASSETS.unread(multi_assets),
        ),
    )


def parse_trade_lite(payload: Payload, ctx: Context) -> TradeLite:
    payload = _TRADE_LITE.view(payload)
    return TradeLite(
        **futures_user_header(payload, ctx),
        symbol=text(payload["s"], "s"),
        quantity=decimal(payload["q"], "q"),
        price=decimal(payload["p"], "p"),
        maker=boolean(payload["m"], "m"),
        client_order_id=any_text(payload["c"], "c"),
        side=text(payload["S"], "S"),
        last_price=decimal(payload["L"], "L"),
        last_quantity=decimal(payload["l"], "l"),
        trade_id=integer(payload["t"], "t"),
        order_id=integer(payload["i"], "i"),
        received_at_us=ctx.received_at_us,
        extra=_TRADE_LITE.unread(payload),
    )
