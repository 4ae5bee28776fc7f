"""Binance frames in, typed events out: ``FrameParser.parse(raw) -> list[Event]``.

Wire names stop here: ``t``, ``p``, ``E`` become ``trade_id``, ``price``, ``event_time_us``.
Prices and quantities become :class:`~decimal.Decimal` (exact, never float); timestamps become
integer epoch microseconds whatever ``timeUnit`` the connection asked for. Fields Binance adds
tomorrow are kept, JSON-encoded, in ``extra`` so nothing it sends is silently dropped. The event
classes live in :mod:`gateway.binance.events`, one module per family.

Normalisation, all pure:

* combined-stream wrappers ``{"stream", "data"}`` and user-data wrappers
  ``{"subscriptionId", "event"}`` are unwrapped;
* all-market arrays (``!miniTicker@arr``) become one event per symbol;
* a frame is dispatched on its stream's channel when that channel has a handler (spot
  ``bookTicker`` and partial depth carry no ``e``; futures partial depth and RPI depth carry the
  same ``e`` as diff depth), otherwise on its event type ``e``: both through ``dict`` tables per
  market.

Anything that is not a well-formed, known frame raises :class:`MessageParseError`, which the
pipeline turns into a dead-letter record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import InvalidOperation
from typing import Any, ClassVar

import orjson

from gateway.binance.events.base import Context, Payload, integer, time_us
from gateway.binance.events.books import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    PriceLevel,
    RpiDepthUpdate,
    parse_book_ticker,
    parse_depth_update,
    parse_futures_depth_snapshot,
    parse_rpi_depth_update,
    parse_spot_depth_snapshot,
)
from gateway.binance.events.derivatives import (
    AssetIndex,
    CompositeIndex,
    ContractInfo,
    IndexComponent,
    IndexPrice,
    MarkPrice,
    NotionalBracket,
    TradingSession,
    parse_asset_index,
    parse_composite_index,
    parse_contract_info,
    parse_index_price,
    parse_mark_price,
    parse_trading_session,
)
from gateway.binance.events.futures_user import (
    AccountConfigUpdate,
    AccountUpdate,
    MarginCall,
    MarginCallPosition,
    OrderTradeUpdate,
    PositionUpdate,
    TradeLite,
    WalletBalance,
    parse_account_config_update,
    parse_account_update,
    parse_margin_call,
    parse_order_trade_update,
    parse_trade_lite,
)
from gateway.binance.events.klines import (
    ContinuousKline,
    IndexPriceKline,
    Kline,
    MarkPriceKline,
    parse_continuous_kline,
    parse_index_price_kline,
    parse_kline,
    parse_mark_price_kline,
)
from gateway.binance.events.spot_user import (
    AccountBalance,
    AccountPosition,
    BalanceUpdate,
    EventStreamTerminated,
    ExecutionReport,
    ExternalLockUpdate,
    ListenKeyExpired,
    ListOrder,
    ListStatus,
    parse_account_position,
    parse_balance_update,
    parse_event_stream_terminated,
    parse_execution_report,
    parse_external_lock_update,
    parse_list_status,
    parse_listen_key_expired,
)
from gateway.binance.events.tickers import (
    AvgPrice,
    MiniTicker,
    ReferencePrice,
    RollingTicker,
    Ticker,
    parse_avg_price,
    parse_futures_ticker,
    parse_mini_ticker,
    parse_reference_price,
    parse_rolling_ticker,
    parse_spot_ticker,
)
from gateway.binance.events.trades import (
    AggTrade,
    BlockTrade,
    ForceOrder,
    Trade,
    parse_agg_trade,
    parse_block_trade,
    parse_force_order,
    parse_trade,
)
from gateway.binance.markets import Market
from gateway.binance.streams import TimeUnit
from gateway.errors import MessageParseError

__all__ = [
    "AccountBalance",
    "AccountConfigUpdate",
    "AccountEvent",
    "AccountPosition",
    "AccountUpdate",
    "AggTrade",
    "AssetIndex",
    "AvgPrice",
    "BalanceUpdate",
    "BlockTrade",
    "BookTicker",
    "CompositeIndex",
    "ContinuousKline",
    "ContractInfo",
    "ControlReply",
    "DepthSnapshot",
    "DepthUpdate",
    "Event",
    "EventStreamTerminated",
    "ExecutionReport",
    "ExternalLockUpdate",
    "ForceOrder",
    "FrameParser",
    "IndexComponent",
    "IndexPrice",
    "IndexPriceKline",
    "Kline",
    "ListOrder",
    "ListStatus",
    "ListenKeyExpired",
    "MarginCall",
    "MarginCallPosition",
    "MarkPrice",
    "MarkPriceKline",
    "MarketEvent",
    "MiniTicker",
    "NotionalBracket",
    "OrderTradeUpdate",
    "PositionUpdate",
    "PriceLevel",
    "PublicEvent",
    "RecordEvent",
    "ReferencePrice",
    "RollingTicker",
    "RpiDepthUpdate",
    "ServerShutdown",
    "Ticker",
    "Trade",
    "TradeLite",
    "TradingSession",
    "WalletBalance",
]


@dataclass(frozen=True, slots=True)
class ControlReply:
    """Binance's answer to a SUBSCRIBE / LIST_SUBSCRIPTIONS / ... control message."""

    KIND: ClassVar[str] = "control_reply"

    request_id: int | str | None
    result: Any
    error_code: int | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """Binance will close this connection for maintenance: reconnect now."""

    KIND: ClassVar[str] = "server_shutdown"

    event_time_us: int


PublicEvent = (
    Trade
    | AggTrade
    | BlockTrade
    | Kline
    | ContinuousKline
    | IndexPriceKline
    | MarkPriceKline
    | MiniTicker
    | Ticker
    | RollingTicker
    | BookTicker
    | AvgPrice
    | ReferencePrice
    | DepthUpdate
    | RpiDepthUpdate
    | DepthSnapshot
    | MarkPrice
    | IndexPrice
    | ForceOrder
    | CompositeIndex
    | ContractInfo
    | AssetIndex
    | TradingSession
)
"""Every public market-data event; each has a schema ``schemas/<market>/<KIND>.avsc``."""

AccountEvent = (
    AccountPosition
    | BalanceUpdate
    | ExecutionReport
    | ListStatus
    | EventStreamTerminated
    | ExternalLockUpdate
    | ListenKeyExpired
    | AccountUpdate
    | MarginCall
    | OrderTradeUpdate
    | AccountConfigUpdate
    | TradeLite
)
"""Every user-data event; each has a schema ``schemas/<market>_user/<KIND>.avsc``."""

RecordEvent = PublicEvent | AccountEvent
"""Every event that becomes a Kafka record (``schema_group``, ``partition_key``, ...)."""

MarketEvent = Trade | AggTrade
"""What ``RecordBuilder.build`` handles until it keys by ``partition_key``; prefer RecordEvent."""

Event = RecordEvent | ControlReply | ServerShutdown

Handler = Callable[[Payload, Context], Event]


def _server_shutdown(payload: Payload, ctx: Context) -> ServerShutdown:
    return ServerShutdown(event_time_us=time_us(payload["E"], "E", ctx))


_EVERY_MARKET: dict[str, Handler] = {
    "aggTrade": parse_agg_trade,
    "kline": parse_kline,
    "24hrMiniTicker": parse_mini_ticker,
    "depthUpdate": parse_depth_update,
    "serverShutdown": _server_shutdown,
}
_SPOT_EVENTS: dict[str, Handler] = {
    **_EVERY_MARKET,
    "trade": parse_trade,
    "blockTrade": parse_block_trade,
    "24hrTicker": parse_spot_ticker,
    # Rolling-window tickers name their window in the event type.
    "1hTicker": parse_rolling_ticker,
    "4hTicker": parse_rolling_ticker,
    "1dTicker": parse_rolling_ticker,
    "avgPrice": parse_avg_price,
    "referencePrice": parse_reference_price,
    # User data (WebSocket API user-data subscriptions, or retired listenKey streams).
    "outboundAccountPosition": parse_account_position,
    "balanceUpdate": parse_balance_update,
    "executionReport": parse_execution_report,
    "listStatus": parse_list_status,
    "eventStreamTerminated": parse_event_stream_terminated,
    "externalLockUpdate": parse_external_lock_update,
    "listenKeyExpired": parse_listen_key_expired,
}
_FUTURES_EVENTS: dict[str, Handler] = {
    **_EVERY_MARKET,
    "24hrTicker": parse_futures_ticker,
    "bookTicker": parse_book_ticker,
    "markPriceUpdate": parse_mark_price,
    "continuous_kline": parse_continuous_kline,
    "forceOrder": parse_force_order,
    "contractInfo": parse_contract_info,
    # User data (listenKey streams).
    "ACCOUNT_UPDATE": parse_account_update,
    "MARGIN_CALL": parse_margin_call,
    "ORDER_TRADE_UPDATE": parse_order_trade_update,
    "ACCOUNT_CONFIG_UPDATE": parse_account_config_update,
    "listenKeyExpired": parse_listen_key_expired,
}
_USDM_EVENTS: dict[str, Handler] = {
    **_FUTURES_EVENTS,
    "compositeIndex": parse_composite_index,
    "assetIndexUpdate": parse_asset_index,
    "EquityUpdate": parse_trading_session,
    "CommodityUpdate": parse_trading_session,
    "KR_EquityUpdate": parse_trading_session,
    "TRADE_LITE": parse_trade_lite,
}
_COINM_EVENTS: dict[str, Handler] = {
    **_FUTURES_EVENTS,
    "indexPriceUpdate": parse_index_price,
    "indexPrice_kline": parse_index_price_kline,
    "markPrice_kline": parse_mark_price_kline,
}

# Channels (the stream name without symbol and speed) that decide the event kind themselves:
# their payloads carry no ``e``, or the same ``e`` as another kind.
_SPOT_CHANNELS: dict[str, Handler] = {
    "bookTicker": parse_book_ticker,
    "!bookTicker": parse_book_ticker,  # retired December 2022; same payload
    "depth5": parse_spot_depth_snapshot,
    "depth10": parse_spot_depth_snapshot,
    "depth20": parse_spot_depth_snapshot,
}
_FUTURES_CHANNELS: dict[str, Handler] = {
    "depth5": parse_futures_depth_snapshot,
    "depth10": parse_futures_depth_snapshot,
    "depth20": parse_futures_depth_snapshot,
}
_USDM_CHANNELS: dict[str, Handler] = {
    **_FUTURES_CHANNELS,
    "rpiDepth": parse_rpi_depth_update,
    "tradingSession": parse_trading_session,
}

_EVENT_TABLES: dict[Market, dict[str, Handler]] = {
    Market.SPOT: _SPOT_EVENTS,
    Market.USDM: _USDM_EVENTS,
    Market.COINM: _COINM_EVENTS,
}
_CHANNEL_TABLES: dict[Market, dict[str, Handler]] = {
    Market.SPOT: _SPOT_CHANNELS,
    Market.USDM: _USDM_CHANNELS,
    Market.COINM: _FUTURES_CHANNELS,
}

RECORD_CLASSES: dict[str, tuple[type[RecordEvent], ...]] = {
    "spot": (
        Trade,
        AggTrade,
        BlockTrade,
        Kline,
        MiniTicker,
        Ticker,
        RollingTicker,
        BookTicker,
        AvgPrice,
        ReferencePrice,
        DepthUpdate,
        DepthSnapshot,
    ),
    "usdm": (
        AggTrade,
        Kline,
        ContinuousKline,
        MiniTicker,
        Ticker,
        BookTicker,
        DepthUpdate,
        RpiDepthUpdate,
        DepthSnapshot,
        MarkPrice,
        ForceOrder,
        CompositeIndex,
        ContractInfo,
        AssetIndex,
        TradingSession,
    ),
    "coinm": (
        AggTrade,
        Kline,
        ContinuousKline,
        IndexPriceKline,
        MarkPriceKline,
        MiniTicker,
        Ticker,
        BookTicker,
        DepthUpdate,
        DepthSnapshot,
        MarkPrice,
        IndexPrice,
        ForceOrder,
        ContractInfo,
    ),
    "spot_user": (
        AccountPosition,
        BalanceUpdate,
        ExecutionReport,
        ListStatus,
        EventStreamTerminated,
        ExternalLockUpdate,
        ListenKeyExpired,
    ),
    "usdm_user": (
        AccountUpdate,
        MarginCall,
        OrderTradeUpdate,
        AccountConfigUpdate,
        TradeLite,
        ListenKeyExpired,
    ),
    "coinm_user": (
        AccountUpdate,
        MarginCall,
        OrderTradeUpdate,
        AccountConfigUpdate,
        ListenKeyExpired,
    ),
}
"""The record classes each schema group receives: ``schemas/<group>/<cls.KIND>.avsc`` each."""

_REPLY_KEYS = frozenset(["result", "code", "error"])


def channel_of(stream: str) -> str:
    """``btcusdt@depth5@100ms`` → ``depth5``; ``!bookTicker`` and ``tradingSession`` stay."""
    head, _, rest = stream.partition("@")
    if not rest or head.startswith("!"):
        return head
    return rest.partition("@")[0]


def _control_reply(message: Payload) -> ControlReply:
    # The docs show errors flat ({"code", "msg", "id"}); the live servers have been seen to wrap
    # them ({"error": {"code", "msg"}, "id"}). Both are errors, never a success.
    if isinstance(message.get("error"), dict):
        message = {**message["error"], "id": message.get("id")}
    if "code" in message:
        return ControlReply(
            request_id=message.get("id"),
            result=None,
            error_code=integer(message["code"], "code"),
            error_message=str(message.get("msg", "")),
        )
    return ControlReply(request_id=message.get("id"), result=message.get("result"))


class FrameParser:
    """Parses the frames of one connection, which fixes the market and the time unit.

    ``stream`` names the stream of a raw ``/ws/<stream>`` connection, whose frames do not say it;
    combined-stream frames name their own.
    """

    def __init__(
        self,
        market: Market,
        time_unit: TimeUnit = TimeUnit.MILLISECOND,
        *,
        stream: str | None = None,
    ) -> None:
        self.market = market
        self.time_unit = time_unit
        self.stream = stream
        self._by_event_type = _EVENT_TABLES[market]
        self._by_channel = _CHANNEL_TABLES[market]

    def parse(
        self, raw: bytes | str, received_at_us: int, stream: str | None = None
    ) -> list[Event]:
        """Turn one WebSocket frame into events; raise MessageParseError if it is not one.

        ``stream`` overrides the connection's stream name for this frame.
        """
        payload_bytes = raw.encode() if isinstance(raw, str) else raw
        stream = stream or self.stream
        try:
            message = orjson.loads(payload_bytes)
            subscription_id = None
            if type(message) is dict:
                if "stream" in message and "data" in message:
                    stream = _stream_name(message["stream"])
                    message = message["data"]
                elif "event" in message and "e" not in message:
                    subscription_id = _subscription_id(message)
                    message = message["event"]
            ctx = Context(
                self.market.value, self.time_unit.to_us, received_at_us, stream, subscription_id
            )
            return self._events(message, ctx)
        except MessageParseError:
            raise
        except (
            orjson.JSONDecodeError,
            KeyError,
            TypeError,
            ValueError,
            IndexError,
            AttributeError,
            InvalidOperation,
        ) as exc:
            raise MessageParseError(
                f"{type(exc).__name__}: {exc}", stream=stream, payload=payload_bytes
            ) from exc

    def _events(self, message: object, ctx: Context) -> list[Event]:
        if type(message) is dict:
            return [self._event(message, ctx)]
        if type(message) is list:
            # All-market streams (``!miniTicker@arr``) send arrays: one event per element.
            return [self._event(_object(item), ctx) for item in message]
        raise ValueError(f"expected a JSON object, got {type(message).__name__}")

    def _event(self, message: Payload, ctx: Context) -> Event:
        event_type = message.get("e")
        if event_type is None and "id" in message and not _REPLY_KEYS.isdisjoint(message):
            return _control_reply(message)
        if ctx.stream is not None:
            by_stream = self._by_channel.get(channel_of(ctx.stream))
            if by_stream is not None:
                return by_stream(message, ctx)
        if event_type is None:
            raise ValueError("frame has no event type 'e' and no stream that implies one")
        handler = self._by_event_type.get(event_type)
        if handler is None:
            raise ValueError(f"unknown event type {event_type!r}")
        return handler(message, ctx)


def _object(item: object) -> Payload:
    if type(item) is not dict:
        raise ValueError(f"expected a JSON object in the array, got {type(item).__name__}")
    return item


def _stream_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"stream must be a string, got {type(value).__name__}")
    return value


def _subscription_id(wrapper: Payload) -> int | None:
    value = wrapper.get("subscriptionId")
    return None if value is None else integer(value, "subscriptionId")
