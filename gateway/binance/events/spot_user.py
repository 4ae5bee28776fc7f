"""Spot user data: balances, orders, order lists and stream lifecycle.

They arrive on the WebSocket API as ``{"subscriptionId": N, "event": {...}}`` (the parser unwraps
it and keeps ``subscription_id``, which tells accounts apart on one connection), or raw on the
retired listenKey streams.
"""

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
    any_text,
    array,
    boolean,
    decimal,
    event_class,
    integer,
    integer_or_digits,
    merged,
    obj,
    optional,
    optional_time_us,
    text,
    time_us,
)


@event_class
class AccountBalance:
    """One asset's balance after an account change."""

    asset: str
    free: Decimal
    locked: Decimal


@event_class
class AccountPosition(Publishable):
    """Balances of the assets an account change touched (``outboundAccountPosition``)."""

    KIND: ClassVar[str] = "account_position"
    ACCOUNT: ClassVar[bool] = True
    KEY_FIELD: ClassVar[str | None] = None

    market: str
    subscription_id: int | None
    event_time_us: int
    last_update_time_us: int
    balances: Sequence[AccountBalance]
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class BalanceUpdate(Publishable):
    """A deposit, withdrawal or transfer changed one asset's balance (``balanceUpdate``)."""

    KIND: ClassVar[str] = "balance_update"
    ACCOUNT: ClassVar[bool] = True
    KEY_FIELD: ClassVar[str | None] = "asset"

    market: str
    subscription_id: int | None
    event_time_us: int
    asset: str
    delta: Decimal
    clear_time_us: int
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class ExternalLockUpdate(Publishable):
    """Spot wallet balance locked or unlocked by an external system (``externalLockUpdate``)."""

    KIND: ClassVar[str] = "external_lock_update"
    ACCOUNT: ClassVar[bool] = True
    KEY_FIELD: ClassVar[str | None] = "asset"

    market: str
    subscription_id: int | None
    event_time_us: int
    asset: str
    delta: Decimal
    transaction_time_us: int
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class ExecutionReport(Publishable):
    """An order changed: placed, filled, canceled, expired... (``executionReport``)."""

    KIND: ClassVar[str] = "execution_report"
    ACCOUNT: ClassVar[bool] = True

    market: str
    subscription_id: int | None
    event_time_us: int
    symbol: str
    client_order_id: str
    side: str
    order_type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    stop_price: Decimal
    iceberg_quantity: Decimal
    order_list_id: int
    original_client_order_id: str
    execution_type: str
    order_status: str
    reject_reason: str
    order_id: int
    last_quantity: Decimal
    cumulative_quantity: Decimal
    last_price: Decimal
    commission: Decimal
    commission_asset: str | None
    transaction_time_us: int
    trade_id: int
    prevented_match_id: int | None
    execution_id: int
    on_book: bool
    maker: bool
    order_creation_time_us: int
    cumulative_quote_quantity: Decimal
    last_quote_quantity: Decimal
    quote_order_quantity: Decimal
    working_time_us: int | None
    self_trade_prevention_mode: str
    trailing_delta: int | None
    trailing_time_us: int | None
    strategy_id: int | None
    strategy_type: int | None
    prevented_quantity: Decimal | None
    last_prevented_quantity: Decimal | None
    trade_group_id: int | None
    counter_order_id: int | None
    counter_symbol: str | None
    prevented_execution_quantity: Decimal | None
    prevented_execution_price: Decimal | None
    prevented_execution_quote_quantity: Decimal | None
    match_type: str | None
    allocation_id: int | None
    working_floor: str | None
    used_sor: bool | None
    peg_price_type: str | None
    peg_offset_type: str | None
    peg_offset_value: int | None
    pegged_price: Decimal | None
    expiry_reason: str | None
    ignored: Mapping[str, str]
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class ListOrder:
    """One order of an order list."""

    symbol: str
    order_id: int
    client_order_id: str


@event_class
class ListStatus(Publishable):
    """An order list (OCO, OTO, ...) changed (``listStatus``)."""

    KIND: ClassVar[str] = "list_status"
    ACCOUNT: ClassVar[bool] = True

    market: str
    subscription_id: int | None
    event_time_us: int
    symbol: str
    order_list_id: int
    contingency_type: str
    list_status_type: str
    list_order_status: str
    list_reject_reason: str
    list_client_order_id: str
    transaction_time_us: int
    orders: Sequence[ListOrder]
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class EventStreamTerminated(Publishable):
    """The user-data subscription ended: logout, unsubscribe or expiry (``eventStreamTerminated``)."""

    KIND: ClassVar[str] = "event_stream_terminated"
    ACCOUNT: ClassVar[bool] = True
    KEY_FIELD: ClassVar[str | None] = None

    market: str
    subscription_id: int | None
    event_time_us: int
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class ListenKeyExpired(Publishable):
    """The listen key expired; the stream stops (``listenKeyExpired``, spot legacy and futures)."""

    KIND: ClassVar[str] = "listen_key_expired"
    ACCOUNT: ClassVar[bool] = True
    KEY_FIELD: ClassVar[str | None] = None

    market: str
    subscription_id: int | None
    event_time_us: int
    listen_key: str
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


_POSITION = Fields()
_BALANCE = Fields(event=False)
_BALANCE_UPDATE = Fields()
_LOCK_UPDATE = Fields()
# "M" is documented as "Ignore".
_EXECUTION = Fields(ignored=["M"])
_LIST_STATUS = Fields()
_LIST_ORDER = Fields(event=False)
_TERMINATED = Fields()
_LISTEN_KEY = Fields()


def _balance(item: object, index: int) -> tuple[AccountBalance, dict[str, str]]:
    name = f"B[{index}]"
    value = _BALANCE.view(obj(item, name))
    balance = AccountBalance(
        asset=text(value["a"], f"{name}.a"),
        free=decimal(value["f"], f"{name}.f"),
        locked=decimal(value["l"], f"{name}.l"),
    )
    return balance, _BALANCE.unread(value, f"{name}.")


def parse_account_position(payload: Payload, ctx: Context) -> AccountPosition:
    payload = _POSITION.view(payload)
    parsed = [_balance(item, i) for i, item in enumerate(array(payload["B"], "B"))]
    return AccountPosition(
        market=ctx.market,
        subscription_id=ctx.subscription_id,
        event_time_us=time_us(payload["E"], "E", ctx),
        last_update_time_us=time_us(payload["u"], "u", ctx),
        balances=[balance for balance, _ in parsed],
        received_at_us=ctx.received_at_us,
        extra=merged(_POSITION.unread(payload), *(unknown for _, unknown in parsed)),
    )


def parse_balance_update(payload: Payload, ctx: Context) -> BalanceUpdate:
    payload = _BALANCE_UPDATE.view(payload)
    return BalanceUpdate(
        market=ctx.market,
        subscription_id=ctx.subscription_id,
        event_time_us=time_us(payload["E"], "E", ctx),
        asset=text(payload["a"], "a"),
        delta=decimal(payload["d"], "d"),
        clear_time_us=time_us(payload["T"], "T", ctx),
        received_at_us=ctx.received_at_us,
        extra=_BALANCE_UPDATE.unread(payload),
    )


def parse_external_lock_update(payload: Payload, ctx: Context) -> ExternalLockUpdate:
    payload = _LOCK_UPDATE.view(payload)
    return ExternalLockUpdate(
        market=ctx.market,
        subscription_id=ctx.subscription_id,
        event_time_us=time_us(payload["E"], "E", ctx),
        asset=text(payload["a"], "a"),
        delta=decimal(payload["d"], "d"),
        transaction_time_us=time_us(payload["T"], "T", ctx),
        received_at_us=ctx.received_at_us,
        extra=_LOCK_UPDATE.unread(payload),
    )


def parse_execution_report(payload: Payload, ctx: Context) -> ExecutionReport:
    payload = _EXECUTION.view(payload)
    return ExecutionReport(
        market=ctx.market,
        subscription_id=ctx.subscription_id,
        event_time_us=time_us(payload["E"], "E", ctx),
        symbol=text(payload["s"], "s"),
        client_order_id=any_text(payload["c"], "c"),
        side=text(payload["S"], "S"),
        order_type=text(payload["o"], "o"),
        time_in_force=text(payload["f"], "f"),
        quantity=decimal(payload["q"], "q"),
        price=decimal(payload["p"], "p"),
        stop_price=decimal(payload["P"], "P"),
        iceberg_quantity=decimal(payload["F"], "F"),
        order_list_id=integer(payload["g"], "g"),
        original_client_order_id=any_text(payload["C"], "C"),
        execution_type=text(payload["x"], "x"),
        order_status=text(payload["X"], "X"),
        reject_reason=text(payload["r"], "r"),
        order_id=integer(payload["i"], "i"),
        last_quantity=decimal(payload["l"], "l"),
        cumulative_quantity=decimal(payload["z"], "z"),
        last_price=decimal(payload["L"], "L"),
        commission=decimal(payload["n"], "n"),
        commission_asset=optional(payload, "N", text),
        transaction_time_us=time_us(payload["T"], "T", ctx),
        trade_id=integer(payload["t"], "t"),
        prevented_match_id=optional(payload, "v", integer),
        execution_id=integer(payload["I"], "I"),
        on_book=boolean(payload["w"], "w"),
        maker=boolean(payload["m"], "m"),
        order_creation_time_us=time_us(payload["O"], "O", ctx),
        cumulative_quote_quantity=decimal(payload["Z"], "Z"),
        last_quote_quantity=decimal(payload["Y"], "Y"),
        quote_order_quantity=decimal(payload["Q"], "Q"),
        working_time_us=optional_time_us(payload, "W", ctx),
        self_trade_prevention_mode=text(payload["V"], "V"),
        trailing_delta=optional(payload, "d", integer),
        trailing_time_us=optional_time_us(payload, "D", ctx),
        strategy_id=optional(payload, "j", integer),
        strategy_type=optional(payload, "J", integer),
        prevented_quantity=optional(payload, "A", decimal),
        last_prevented_quantity=optional(payload, "B", decimal),
        trade_group_id=optional(payload, "u", integer),
        counter_order_id=optional(payload, "U", integer),
        counter_symbol=optional(payload, "Cs", text),
        prevented_execution_quantity=optional(payload, "pl", decimal),
        prevented_execution_price=optional(payload, "pL", decimal),
        prevented_execution_quote_quantity=optional(payload, "pY", decimal),
        match_type=optional(payload, "b", text),
        allocation_id=optional(payload, "a", integer),
        working_floor=optional(payload, "k", text),
        used_sor=optional(payload, "uS", boolean),
        peg_price_type=optional(payload, "gP", text),
        peg_offset_type=optional(payload, "gOT", text),
        peg_offset_value=optional(payload, "gOV", integer),
        pegged_price=optional(payload, "gp", decimal),
        expiry_reason=optional(payload, "eR", text),
        ignored=_EXECUTION.ignored(payload),
        received_at_us=ctx.received_at_us,
        extra=_EXECUTION.unread(payload),
    )


def _list_order(item: object, index: int) -> tuple[ListOrder, dict[str, str]]:
    name = f"O[{index}]"
    value = _LIST_ORDER.view(obj(item, name))
    order = ListOrder(
        symbol=text(value["s"], f"{name}.s"),
        order_id=integer(value["i"], f"{name}.i"),
        client_order_id=any_text(value["c"], f"{name}.c"),
    )
    return order, _LIST_ORDER.unread(value, f"{name}.")


def parse_list_status(payload: Payload, ctx: Context) -> ListStatus:
    payload = _LIST_STATUS.view(payload)
    parsed = [_list_order(item, i) for i, item in enumerate(array(payload["O"], "O"))]
    return ListStatus(
        market=ctx.market,
        subscription_id=ctx.subscription_id,
        event_time_us=time_us(payload["E"], "E", ctx),
        symbol=text(payload["s"], "s"),
        order_list_id=integer(payload["g"], "g"),
        contingency_type=text(payload["c"], "c"),
        list_status_type=text(payload["l"], "l"),
        list_order_status=text(payload["L"], "L"),
        list_reject_reason=text(payload["r"], "r"),
        list_client_order_id=any_text(payload["C"], "C"),
        transaction_time_us=time_us(payload["T"], "T", ctx),
        orders=[order for order, _ in parsed],
        received_at_us=ctx.received_at_us,
        extra=merged(_LIST_STATUS.unread(payload), *(unknown for _, unknown in parsed)),
    )


def parse_event_stream_terminated(payload: Payload, ctx: Context) -> EventStreamTerminated:
    payload = _TERMINATED.view(payload)
    return EventStreamTerminated(
        market=ctx.market,
        subscription_id=ctx.subscription_id,
        event_time_us=time_us(payload["E"], "E", ctx),
        received_at_us=ctx.received_at_us,
        extra=_TERMINATED.unread(payload),
    )


def parse_listen_key_expired(payload: Payload, ctx: Context) -> ListenKeyExpired:
    payload = _LISTEN_KEY.view(payload)
    # USD-M documents "E" as a string ("1736996475556"); spot sends a number.
    event_time = integer_or_digits(payload["E"], "E")
    return ListenKeyExpired(
        market=ctx.market,
        subscription_id=ctx.subscription_id,
        event_time_us=time_us(event_time, "E", ctx),
        listen_key=text(payload["listenKey"], "listenKey"),
        received_at_us=ctx.received_at_us,
        extra=_LISTEN_KEY.unread(payload),
    )
