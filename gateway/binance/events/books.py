"""Order books: diff depth, RPI diff depth, partial-depth snapshots and the best bid/ask."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import ClassVar, TypeVar

from gateway.binance.events.base import (
    Context,
    Fields,
    Payload,
    Price,
    Publishable,
    Scaled,
    array,
    contract_market,
    event_class,
    integer,
    optional,
    optional_time_us,
    scaled,
    symbol_type,
    text,
    time_us,
)


@event_class
class PriceLevel:
    """One book level; quantity 0 in a diff removes the level."""

    price: Price
    quantity: Price


@event_class
class _DepthDiff(Publishable):
    market: str
    symbol: str
    pair: str | None
    event_time_us: int
    transaction_time_us: int | None
    first_update_id: int
    final_update_id: int
    previous_final_update_id: int | None
    bids: Sequence[PriceLevel]
    asks: Sequence[PriceLevel]
    symbol_type: int | None = field(default=None, kw_only=True)
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class DepthUpdate(_DepthDiff):
    """A diff of one symbol's book (``<symbol>@depth[@100ms]``): what the book sync consumes."""

    KIND: ClassVar[str] = "depth_update"


@event_class
class RpiDepthUpdate(_DepthDiff):
    """A USD-M diff that includes RPI orders (``<symbol>@rpiDepth@500ms``).

    A class of its own, not a :class:`DepthUpdate` subclass, so it can never be fed into the
    ordinary book by an ``isinstance`` check.
    """

    KIND: ClassVar[str] = "rpi_depth_update"


@event_class
class DepthSnapshot(Publishable):
    """The top levels of one symbol's book (``<symbol>@depth<5|10|20>``).

    Spot sends ``{lastUpdateId, bids, asks}`` with no symbol (it comes from the stream name);
    futures send a full ``depthUpdate`` whose ``u`` is the snapshot's last update id.
    """

    KIND: ClassVar[str] = "depth_snapshot"

    market: str
    symbol: str
    pair: str | None
    event_time_us: int | None
    transaction_time_us: int | None
    first_update_id: int | None
    last_update_id: int
    previous_final_update_id: int | None
    bids: Sequence[PriceLevel]
    asks: Sequence[PriceLevel]
    symbol_type: int | None = field(default=None, kw_only=True)
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class BookSnapshot(Publishable):
    """A whole book the gateway synchronised: what a consumer rebuilds from, with the diffs after.

    ``reason`` says why it was taken: ``initial`` (the first sync), ``gap`` (a resync after diffs
    were missed: the marker consumers look for) or ``periodic`` (the gateway's own synchronised
    book, so a consumer never needs to replay far).
    """

    KIND: ClassVar[str] = "book_snapshot"
    TIME_FIELD: ClassVar[str] = "received_at_us"

    market: str
    symbol: str
    last_update_id: int
    reason: str
    bids: Sequence[PriceLevel]
    asks: Sequence[PriceLevel]
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class BookTicker(Publishable):
    """Best bid and ask of one symbol (``<symbol>@bookTicker``, futures ``!bookTicker``)."""

    KIND: ClassVar[str] = "book_ticker"

    market: str
    symbol: str
    pair: str | None
    event_time_us: int | None
    transaction_time_us: int | None
    update_id: int
    bid_price: Scaled
    bid_quantity: Scaled
    ask_price: Scaled
    ask_quantity: Scaled
    symbol_type: int | None = field(default=None, kw_only=True)
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


_DEPTH_UPDATE = Fields()
_RPI_DEPTH_UPDATE = Fields()
_FUTURES_DEPTH_SNAPSHOT = Fields()
# Spot partial depth is {lastUpdateId, bids, asks}: no event type.
_SPOT_DEPTH_SNAPSHOT = Fields(event=False)
_BOOK_TICKER = Fields()


def levels(value: object, name: str) -> list[PriceLevel]:
    """``[["price", "quantity"], ...]``; a level with more or fewer entries is malformed."""
    result = []
    for level in array(value, name):
        price, quantity = array(level, name)
        result.append(PriceLevel(scaled(price, name), scaled(quantity, name)))
    return result


def symbol_of_stream(ctx: Context) -> str:
    """``btcusdt@depth5@100ms`` → ``BTCUSDT``: partial depth on spot names its symbol nowhere else."""
    if not ctx.stream or "@" not in ctx.stream:
        raise ValueError("a partial-depth payload needs its stream name to know its symbol")
    return text(ctx.stream.partition("@")[0].upper(), "stream")


_Diff = TypeVar("_Diff", bound=_DepthDiff)


def _depth_diff(cls: type[_Diff], payload: Payload, ctx: Context, fields: Fields) -> _Diff:
    payload = fields.view(payload)
    kind = symbol_type(payload)
    return cls(
        market=contract_market(kind, ctx),
        symbol=text(payload["s"], "s"),
        pair=optional(payload, "ps", text),
        event_time_us=time_us(payload["E"], "E", ctx),
        transaction_time_us=optional_time_us(payload, "T", ctx),
        first_update_id=integer(payload["U"], "U"),
        final_update_id=integer(payload["u"], "u"),
        previous_final_update_id=optional(payload, "pu", integer),
        bids=levels(payload["b"], "b"),
        asks=levels(payload["a"], "a"),
        symbol_type=kind,
        received_at_us=ctx.received_at_us,
        extra=fields.unread(payload),
    )


def parse_depth_update(payload: Payload, ctx: Context) -> DepthUpdate:
    return _depth_diff(DepthUpdate, payload, ctx, _DEPTH_UPDATE)


def parse_rpi_depth_update(payload: Payload, ctx: Context) -> RpiDepthUpdate:
    return _depth_diff(RpiDepthUpdate, payload, ctx, _RPI_DEPTH_UPDATE)


def parse_spot_depth_snapshot(payload: Payload, ctx: Context) -> DepthSnapshot:
    payload = _SPOT_DEPTH_SNAPSHOT.view(payload)
    return DepthSnapshot(
        market=ctx.market,
        symbol=symbol_of_stream(ctx),
        pair=None,
        event_time_us=None,
        transaction_time_us=None,
        first_update_id=None,
        last_update_id=integer(payload["lastUpdateId"], "lastUpdateId"),
        previous_final_update_id=None,
        bids=levels(payload["bids"], "bids"),
        asks=levels(payload["asks"], "asks"),
        received_at_us=ctx.received_at_us,
        extra=_SPOT_DEPTH_SNAPSHOT.unread(payload),
    )


def parse_futures_depth_snapshot(payload: Payload, ctx: Context) -> DepthSnapshot:
    payload = _FUTURES_DEPTH_SNAPSHOT.view(payload)
    kind = symbol_type(payload)
    return DepthSnapshot(
        market=contract_market(kind, ctx),
        symbol=text(payload["s"], "s"),
        pair=optional(payload, "ps", text),
        event_time_us=time_us(payload["E"], "E", ctx),
        transaction_time_us=optional_time_us(payload, "T", ctx),
        first_update_id=integer(payload["U"], "U"),
        last_update_id=integer(payload["u"], "u"),
        previous_final_update_id=optional(payload, "pu", integer),
        bids=levels(payload["b"], "b"),
        asks=levels(payload["a"], "a"),
        symbol_type=kind,
        received_at_us=ctx.received_at_us,
        extra=_FUTURES_DEPTH_SNAPSHOT.unread(payload),
    )


def parse_book_ticker(payload: Payload, ctx: Context) -> BookTicker:
    payload = _BOOK_TICKER.view(payload)
    kind = symbol_type(payload)
    return BookTicker(
        market=contract_market(kind, ctx),
        symbol=text(payload["s"], "s"),
        pair=optional(payload, "ps", text),
        event_time_us=optional_time_us(payload, "E", ctx),
        transaction_time_us=optional_time_us(payload, "T", ctx),
        update_id=integer(payload["u"], "u"),
        bid_price=scaled(payload["b"], "b"),
        bid_quantity=scaled(payload["B"], "B"),
        ask_price=scaled(payload["a"], "a"),
        ask_quantity=scaled(payload["A"], "A"),
        symbol_type=kind,
        received_at_us=ctx.received_at_us,
        extra=_BOOK_TICKER.unread(payload),
    )
