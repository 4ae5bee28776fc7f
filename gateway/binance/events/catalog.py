"""Which events each market sends, how a frame finds its parser, and which become records.

Per market, two ``dict`` tables (no if-chains): by event type ``e``, and by stream channel for the
frames whose ``e`` is missing or ambiguous. ``RECORD_CLASSES`` lists the record classes of each
schema group; a test proves it equals ``schemas/``.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.binance.events import (
    account_snapshot,
    books,
    connection,
    derivatives,
    futures_algo as algo,
    futures_user as futures,
    klines,
    spot_user as spot,
    tickers,
    trades,
)
from gateway.binance.events.base import Context, Payload
from gateway.binance.markets import Market

PublicEvent = (
    trades.Trade
    | trades.AggTrade
    | trades.BlockTrade
    | trades.ForceOrder
    | klines.Kline
    | klines.ContinuousKline
    | klines.IndexPriceKline
    | klines.MarkPriceKline
    | tickers.MiniTicker
    | tickers.Ticker
    | tickers.RollingTicker
    | tickers.AvgPrice
    | tickers.ReferencePrice
    | books.BookTicker
    | books.DepthUpdate
    | books.RpiDepthUpdate
    | books.DepthSnapshot
    | books.BookSnapshot
    | derivatives.MarkPrice
    | derivatives.IndexPrice
    | derivatives.CompositeIndex
    | derivatives.ContractInfo
    | derivatives.AssetIndex
    | derivatives.TradingSession
)
"""Every public market-data event; each has a schema ``schemas/<market>/<KIND>.avsc``."""

AccountEvent = (
    spot.AccountPosition
    | spot.BalanceUpdate
    | spot.ExecutionReport
    | spot.ListStatus
    | spot.EventStreamTerminated
    | spot.ExternalLockUpdate
    | spot.ListenKeyExpired
    | futures.AccountUpdate
    | futures.MarginCall
    | futures.OrderTradeUpdate
    | futures.AccountConfigUpdate
    | futures.TradeLite
    | algo.AlgoUpdate
    | algo.ConditionalOrderTriggerReject
    | algo.GridUpdate
    | algo.StrategyUpdate
    | account_snapshot.AccountSnapshot
)
"""Every user-data event; each has a schema ``schemas/<market>_user/<KIND>.avsc``."""

RecordEvent = PublicEvent | AccountEvent
"""Every event that becomes a Kafka record (``schema_group``, ``partition_key``, ...)."""

Event = RecordEvent | connection.ControlReply | connection.ServerShutdown

Handler = Callable[[Payload, Context], Event]

_EVERY_MARKET: dict[str, Handler] = {
    "aggTrade": trades.parse_agg_trade,
    "kline": klines.parse_kline,
    "24hrMiniTicker": tickers.parse_mini_ticker,
    "depthUpdate": books.parse_depth_update,
    "serverShutdown": connection.parse_server_shutdown,
    "listenKeyExpired": spot.parse_listen_key_expired,
}
_SPOT_EVENTS: dict[str, Handler] = {
    **_EVERY_MARKET,
    "trade": trades.parse_trade,
    "blockTrade": trades.parse_block_trade,
    "24hrTicker": tickers.parse_spot_ticker,
    # Rolling-window tickers name their window in the event type.
    "1hTicker": tickers.parse_rolling_ticker,
    "4hTicker": tickers.parse_rolling_ticker,
    "1dTicker": tickers.parse_rolling_ticker,
    "avgPrice": tickers.parse_avg_price,
    "referencePrice": tickers.parse_reference_price,
    # User data (WebSocket API user-data subscriptions, or retired listenKey streams).
    "outboundAccountPosition": spot.parse_account_position,
    "balanceUpdate": spot.parse_balance_update,
    "executionReport": spot.parse_execution_report,
    "listStatus": spot.parse_list_status,
    "eventStreamTerminated": spot.parse_event_stream_terminated,
    "externalLockUpdate": spot.parse_external_lock_update,
}
_FUTURES_EVENTS: dict[str, Handler] = {
    **_EVERY_MARKET,
    "trade": trades.parse_trade,  # served though undocumented (docs/binance-streams.md)
    "24hrTicker": tickers.parse_futures_ticker,
    "bookTicker": books.parse_book_ticker,
    "markPriceUpdate": derivatives.parse_mark_price,
    "continuous_kline": klines.parse_continuous_kline,
    "forceOrder": trades.parse_force_order,
    "contractInfo": derivatives.parse_contract_info,
    # User data (listenKey streams).
    "ACCOUNT_UPDATE": futures.parse_account_update,
    "MARGIN_CALL": futures.parse_margin_call,
    "ORDER_TRADE_UPDATE": futures.parse_order_trade_update,
    "ACCOUNT_CONFIG_UPDATE": futures.parse_account_config_update,
    "GRID_UPDATE": algo.parse_grid_update,
    "STRATEGY_UPDATE": algo.parse_strategy_update,
}
_USDM_EVENTS: dict[str, Handler] = {
    **_FUTURES_EVENTS,
    "compositeIndex": derivatives.parse_composite_index,
    "assetIndexUpdate": derivatives.parse_asset_index,
    "EquityUpdate": derivatives.parse_trading_session,
    "CommodityUpdate": derivatives.parse_trading_session,
    "KR_EquityUpdate": derivatives.parse_trading_session,
    "TRADE_LITE": futures.parse_trade_lite,
    "ALGO_UPDATE": algo.parse_algo_update,
    "CONDITIONAL_ORDER_TRIGGER_REJECT": algo.parse_conditional_order_trigger_reject,
}
_COINM_EVENTS: dict[str, Handler] = {
    **_FUTURES_EVENTS,
    "indexPriceUpdate": derivatives.parse_index_price,
    "indexPrice_kline": klines.parse_index_price_kline,
    "markPrice_kline": klines.parse_mark_price_kline,
}

# Channels (the stream name without symbol and speed) that decide the event kind themselves:
# their payloads carry no ``e``, or the same ``e`` as another kind.
_SPOT_CHANNELS: dict[str, Handler] = {
    "bookTicker": books.parse_book_ticker,
    "!bookTicker": books.parse_book_ticker,  # retired December 2022; same payload
    "depth5": books.parse_spot_depth_snapshot,
    "depth10": books.parse_spot_depth_snapshot,
    "depth20": books.parse_spot_depth_snapshot,
}
_FUTURES_CHANNELS: dict[str, Handler] = {
    "depth5": books.parse_futures_depth_snapshot,
    "depth10": books.parse_futures_depth_snapshot,
    "depth20": books.parse_futures_depth_snapshot,
}
_USDM_CHANNELS: dict[str, Handler] = {
    **_FUTURES_CHANNELS,
    "rpiDepth": books.parse_rpi_depth_update,
    "tradingSession": derivatives.parse_trading_session,
}

EVENT_TABLES: dict[Market, dict[str, Handler]] = {
    Market.SPOT: _SPOT_EVENTS,
    Market.USDM: _USDM_EVENTS,
    Market.COINM: _COINM_EVENTS,
}
CHANNEL_TABLES: dict[Market, dict[str, Handler]] = {
    Market.SPOT: _SPOT_CHANNELS,
    Market.USDM: _USDM_CHANNELS,
    Market.COINM: _FUTURES_CHANNELS,
}

_FUTURES_ACCOUNT = (
    futures.AccountUpdate,
    futures.MarginCall,
    futures.OrderTradeUpdate,
    futures.AccountConfigUpdate,
    spot.ListenKeyExpired,
    account_snapshot.AccountSnapshot,
    algo.GridUpdate,
    algo.StrategyUpdate,
)
RECORD_CLASSES: dict[str, tuple[type[RecordEvent], ...]] = {
    "spot": (
        trades.Trade,
        trades.AggTrade,
        trades.BlockTrade,
        klines.Kline,
        tickers.MiniTicker,
        tickers.Ticker,
        tickers.RollingTicker,
        books.BookTicker,
        tickers.AvgPrice,
        tickers.ReferencePrice,
        books.DepthUpdate,
        books.DepthSnapshot,
        books.BookSnapshot,
    ),
    "usdm": (
        trades.Trade,
        trades.AggTrade,
        klines.Kline,
        klines.ContinuousKline,
        tickers.MiniTicker,
        tickers.Ticker,
        books.BookTicker,
        books.DepthUpdate,
        books.RpiDepthUpdate,
        books.DepthSnapshot,
        books.BookSnapshot,
        derivatives.MarkPrice,
        trades.ForceOrder,
        derivatives.CompositeIndex,
        derivatives.ContractInfo,
        derivatives.AssetIndex,
        derivatives.TradingSession,
    ),
    "coinm": (
        trades.Trade,
        trades.AggTrade,
        klines.Kline,
        klines.ContinuousKline,
        klines.IndexPriceKline,
        klines.MarkPriceKline,
        tickers.MiniTicker,
        tickers.Ticker,
        books.BookTicker,
        books.DepthUpdate,
        books.DepthSnapshot,
        books.BookSnapshot,
        derivatives.MarkPrice,
        derivatives.IndexPrice,
        trades.ForceOrder,
        derivatives.ContractInfo,
    ),
    "spot_user": (
        spot.AccountPosition,
        spot.BalanceUpdate,
        spot.ExecutionReport,
        spot.ListStatus,
        spot.EventStreamTerminated,
        spot.ExternalLockUpdate,
        spot.ListenKeyExpired,
        account_snapshot.AccountSnapshot,
    ),
    "usdm_user": (
        *_FUTURES_ACCOUNT,
        futures.TradeLite,
        algo.AlgoUpdate,
        algo.ConditionalOrderTriggerReject,
    ),
    "coinm_user": _FUTURES_ACCOUNT,
}
"""The record classes each schema group receives: ``schemas/<group>/<cls.KIND>.avsc`` each."""
