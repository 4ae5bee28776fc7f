"""Every official Binance payload becomes a record that carries every value it sent, exactly.

For each vector file: parse it (with the market, and the stream name where the payload does not
identify itself), encode the record, decode it with fastavro, and walk the *wire* payload key by
key: each key must be mapped to a field (by the independent tables below, not the parser's) and
hold the same value (decimals by Decimal equality, times in microseconds, nested arrays element by
element), or be kept in ``extra``. Nothing dropped, nothing invented.
"""

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import orjson
import pytest

from gateway.binance.events.books import DepthSnapshot
from gateway.binance.events.catalog import RecordEvent
from gateway.binance.events.klines import Kline
from gateway.binance.markets import Market
from gateway.binance.messages import ControlReply, FrameParser, ServerShutdown
from gateway.records.avro import (
    SchemaCatalog,
    SchemaKey,
)
from gateway.records.builder import event_datum
from tests.unit.avro_support import encoded, roundtrip
from tests.vectors import VECTORS_DIR, vector

CATALOG = SchemaCatalog.load()
RECEIVED_AT_US = 1_700_000_000_000_123
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


EVENT_TYPE = _Marker("EVENT_TYPE")  # 'e': proven by the class the frame was dispatched to
IGNORED = _Marker("IGNORED")  # documented "Ignore": kept JSON-encoded in the `ignored` map


@dataclass(frozen=True)
class Levels:
    """``[["price", "qty"], ...]`` → array of {price, quantity} records."""

    field: str


@dataclass(frozen=True)
class Items:
    """An array of objects → array of records, each object mapped by ``mapping``."""

    field: str
    mapping: dict[str, Any]


@dataclass(frozen=True)
class Derived:
    """A field computed from a wire value, e.g. the window of ``"1hTicker"``."""

    field: str
    derive: Any


TRADE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "s": "symbol",
    "t": "trade_id",
    "p": "price",
    "q": "quantity",
    "T": "trade_time_us",
    "m": "buyer_is_maker",
    "M": "best_match",
}
AGG_TRADE = TRADE | {
    "a": "agg_trade_id",
    "nq": "normal_quantity",
    "f": "first_trade_id",
    "l": "last_trade_id",
    "st": "symbol_type",
}
del AGG_TRADE["t"]
BLOCK_TRADE = TRADE | {"t": "block_trade_id"}
FORCE_ORDER = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "ps": "pair",  # beside "o" since the 2026-06-30 integration
    "st": "symbol_type",
    "o": {
        "s": "symbol",
        "ps": "pair",
        "S": "side",
        "o": "order_type",
        "f": "time_in_force",
        "q": "quantity",
        "p": "price",
        "ap": "average_price",
        "X": "order_status",
        "l": "last_filled_quantity",
        "z": "filled_quantity",
        "T": "trade_time_us",
    },
}
DEPTH_UPDATE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "T": "transaction_time_us",
    "s": "symbol",
    "ps": "pair",
    "U": "first_update_id",
    "u": "final_update_id",
    "pu": "previous_final_update_id",
    "st": "symbol_type",
    "b": Levels("bids"),
    "a": Levels("asks"),
}
DEPTH_SNAPSHOT = DEPTH_UPDATE | {
    "u": "last_update_id",
    "lastUpdateId": "last_update_id",
    "bids": Levels("bids"),
    "asks": Levels("asks"),
}
BOOK_TICKER = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "T": "transaction_time_us",
    "s": "symbol",
    "ps": "pair",
    "u": "update_id",
    "st": "symbol_type",
    "b": "bid_price",
    "B": "bid_quantity",
    "a": "ask_price",
    "A": "ask_quantity",
}
MINI_TICKER = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "s": "symbol",
    "ps": "pair",
    "st": "symbol_type",
    "c": "last_price",
    "o": "open_price",
    "h": "high_price",
    "l": "low_price",
    "v": "volume",
    "q": "quote_volume",
}
ROLLING_TICKER = MINI_TICKER | {
    "e": Derived("window", lambda e: e.removesuffix("Ticker")),
    "p": "price_change",
    "P": "price_change_percent",
    "w": "weighted_average_price",
    "O": "open_time_us",
    "C": "close_time_us",
    "F": "first_trade_id",
    "L": "last_trade_id",
    "n": "trade_count",
}
TICKER = ROLLING_TICKER | {
    "e": EVENT_TYPE,
    "x": "price_before_window",
    "Q": "last_quantity",
    "b": "best_bid_price",
    "B": "best_bid_quantity",
    "a": "best_ask_price",
    "A": "best_ask_quantity",
}
AVG_PRICE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "s": "symbol",
    "i": "interval",
    "w": "average_price",
    "T": "last_trade_time_us",
}
REFERENCE_PRICE = {
    "e": EVENT_TYPE,
    "s": "symbol",
    "r": "reference_price",
    "t": "engine_time_us",
}
BAR = {
    "t": "open_time_us",
    "T": "close_time_us",
    "i": "interval",
    "o": "open_price",
    "c": "close_price",
    "h": "high_price",
    "l": "low_price",
    "x": "closed",
}
TRADE_BAR = BAR | {
    "v": "volume",
    "n": "trade_count",
    "q": "quote_volume",
    "V": "taker_buy_volume",
    "Q": "taker_buy_quote_volume",
    "B": IGNORED,
}
PRICE_BAR = (
    BAR | dict.fromkeys(["f", "L", "v", "q", "V", "Q", "B"], IGNORED) | {"n": "sample_count"}
)
KLINE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "s": "symbol",
    "k": TRADE_BAR | {"s": "symbol", "f": "first_trade_id", "L": "last_trade_id"},
}
CONTINUOUS_KLINE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "ps": "pair",
    "ct": "contract_type",
    "k": TRADE_BAR | {"f": "first_update_id", "L": "last_update_id"},
}
INDEX_PRICE_KLINE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "ps": "pair",
    "k": PRICE_BAR | {"s": IGNORED},
}
MARK_PRICE_KLINE = INDEX_PRICE_KLINE | {"k": PRICE_BAR | {"s": "symbol"}}
MARK_PRICE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "s": "symbol",
    "p": "mark_price",
    "i": "index_price",
    "P": "estimated_settle_price",
    "r": "funding_rate",
    "T": "next_funding_time_us",
    "ap": "mark_price_moving_average",
    "st": "symbol_type",
}
INDEX_PRICE = {"e": EVENT_TYPE, "E": "event_time_us", "i": "pair", "p": "index_price"}
COMPOSITE_INDEX = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "s": "symbol",
    "p": "price",
    "C": "composition_basis",
    "c": Items(
        "components",
        {
            "b": "base_asset",
            "q": "quote_asset",
            "w": "weight_quantity",
            "W": "weight_percent",
            "i": "index_price",
        },
    ),
}
CONTRACT_INFO = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "s": "symbol",
    "ps": "pair",
    "ct": "contract_type",
    "dt": "delivery_time_us",
    "ot": "onboard_time_us",
    "cs": "contract_status",
    "st": "symbol_type",
    "bks": Items(
        "brackets",
        {
            "bs": "bracket",
            "bnf": "floor_notional",
            "bnc": "cap_notional",
            "mmr": "maintenance_ratio",
            "cf": "auxiliary_number",
            "mi": "min_leverage",
            "ma": "max_leverage",
        },
    ),
}
ASSET_INDEX = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "s": "symbol",
    "i": "index_price",
    "b": "bid_buffer",
    "a": "ask_buffer",
    "B": "bid_rate",
    "A": "ask_rate",
    "q": "auto_exchange_bid_buffer",
    "g": "auto_exchange_ask_buffer",
    "Q": "auto_exchange_bid_rate",
    "G": "auto_exchange_ask_rate",
}
TRADING_SESSION = {
    "e": Derived("session_market", lambda e: e.removesuffix("Update")),
    "E": "event_time_us",
    "t": "start_time_us",
    "T": "end_time_us",
    "S": "session_type",
}

ACCOUNT_POSITION = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "u": "last_update_time_us",
    "B": Items("balances", {"a": "asset", "f": "free", "l": "locked"}),
}
BALANCE_UPDATE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "a": "asset",
    "d": "delta",
    "T": "clear_time_us",
}
EXTERNAL_LOCK_UPDATE = BALANCE_UPDATE | {"T": "transaction_time_us"}
EXECUTION_REPORT = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "s": "symbol",
    "c": "client_order_id",
    "S": "side",
    "o": "order_type",
    "f": "time_in_force",
    "q": "quantity",
    "p": "price",
    "P": "stop_price",
    "F": "iceberg_quantity",
    "g": "order_list_id",
    "C": "original_client_order_id",
    "x": "execution_type",
    "X": "order_status",
    "r": "reject_reason",
    "i": "order_id",
    "l": "last_quantity",
    "z": "cumulative_quantity",
    "L": "last_price",
    "n": "commission",
    "N": "commission_asset",
    "T": "transaction_time_us",
    "t": "trade_id",
    "v": "prevented_match_id",
    "I": "execution_id",
    "w": "on_book",
    "m": "maker",
    "M": IGNORED,
    "O": "order_creation_time_us",
    "Z": "cumulative_quote_quantity",
    "Y": "last_quote_quantity",
    "Q": "quote_order_quantity",
    "W": "working_time_us",
    "V": "self_trade_prevention_mode",
}
LIST_STATUS = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "s": "symbol",
    "g": "order_list_id",
    "c": "contingency_type",
    "l": "list_status_type",
    "L": "list_order_status",
    "r": "list_reject_reason",
    "C": "list_client_order_id",
    "T": "transaction_time_us",
    "O": Items("orders", {"s": "symbol", "i": "order_id", "c": "client_order_id"}),
}
EVENT_STREAM_TERMINATED = {"e": EVENT_TYPE, "E": "event_time_us"}
LISTEN_KEY_EXPIRED = {"e": EVENT_TYPE, "E": "event_time_us", "listenKey": "listen_key"}
ACCOUNT_UPDATE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "T": "transaction_time_us",
    "a": {
        "m": "reason",
        "S": "funding_fee_symbol",
        "B": Items(
            "balances",
            {
                "a": "asset",
                "wb": "wallet_balance",
                "cw": "cross_wallet_balance",
                "bc": "balance_change",
            },
        ),
        "P": Items(
            "positions",
            {
                "s": "symbol",
                "pa": "position_amount",
                "ep": "entry_price",
                "bep": "breakeven_price",
                "cr": "accumulated_realized",
                "up": "unrealized_pnl",
                "mt": "margin_type",
                "iw": "isolated_wallet",
                "ps": "position_side",
            },
        ),
    },
}
MARGIN_CALL = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "cw": "cross_wallet_balance",
    "p": Items(
        "positions",
        {
            "s": "symbol",
            "ps": "position_side",
            "pa": "position_amount",
            "mt": "margin_type",
            "iw": "isolated_wallet",
            "mp": "mark_price",
            "up": "unrealized_pnl",
            "mm": "maintenance_margin",
        },
    ),
}
ORDER_TRADE_UPDATE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "T": "transaction_time_us",
    "i": "account_alias",
    "o": {
        "s": "symbol",
        "c": "client_order_id",
        "S": "side",
        "o": "order_type",
        "f": "time_in_force",
        "q": "quantity",
        "p": "price",
        "ap": "average_price",
        "sp": "stop_price",
        "x": "execution_type",
        "X": "order_status",
        "i": "order_id",
        "l": "last_quantity",
        "z": "cumulative_quantity",
        "L": "last_price",
        "N": "commission_asset",
        "n": "commission",
        "T": "trade_time_us",
        "t": "trade_id",
        "b": "bid_notional",
        "a": "ask_notional",
        "m": "maker",
        "R": "reduce_only",
        "wt": "working_type",
        "ot": "original_order_type",
        "ps": "position_side",
        "cp": "close_all",
        "AP": "activation_price",
        "cr": "callback_rate",
        "pP": "price_protection",
        "si": IGNORED,
        "ss": IGNORED,
        "rp": "realized_profit",
        "V": "self_trade_prevention_mode",
        "pm": "price_match_mode",
        "gtd": "good_till_time_us",
        "er": "expiry_reason",
        "ma": "margin_asset",
    },
}
ACCOUNT_CONFIG_UPDATE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "T": "transaction_time_us",
    "ac": {"s": "symbol", "l": "leverage"},
    "ai": {"j": "multi_assets_mode"},
}
TRADE_LITE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "T": "transaction_time_us",
    "s": "symbol",
    "q": "quantity",
    "p": "price",
    "m": "maker",
    "c": "client_order_id",
    "S": "side",
    "L": "last_price",
    "l": "last_quantity",
    "t": "trade_id",
    "i": "order_id",
}

ALGO_UPDATE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "T": "transaction_time_us",
    "o": {
        "caid": "client_algo_id",
        "aid": "algo_id",
        "at": "algo_type",
        "o": "order_type",
        "s": "symbol",
        "S": "side",
        "ps": "position_side",
        "f": "time_in_force",
        "q": "quantity",
        "X": "algo_status",
        "ai": Derived("order_id", lambda ai: None if ai == "" else int(ai)),
        "ap": "average_price",
        "aq": "executed_quantity",
        "act": "actual_order_type",
        "tp": "trigger_price",
        "p": "price",
        "V": "self_trade_prevention_mode",
        "wt": "working_type",
        "pm": "price_match_mode",
        "cp": "close_all",
        "pP": "price_protection",
        "R": "reduce_only",
        "tt": "trigger_time_us",
        "gtd": "good_till_time_us",
        "rm": "failure_reason",
        "ia": "activated",
    },
}
CONDITIONAL_ORDER_TRIGGER_REJECT = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "T": "transaction_time_us",
    "or": {"s": "symbol", "i": "order_id", "r": "reject_reason"},
}
STRATEGY = {"si": "strategy_id", "st": "strategy_type", "ss": "strategy_status", "s": "symbol"}
GRID_UPDATE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "T": "transaction_time_us",
    "gu": STRATEGY
    | {
        "r": "realized_pnl",
        "up": "unmatched_average_price",
        "uq": "unmatched_quantity",
        "uf": "unmatched_fee",
        "mp": "matched_pnl",
        "ut": "update_time_us",
    },
}
STRATEGY_UPDATE = {
    "e": EVENT_TYPE,
    "E": "event_time_us",
    "T": "transaction_time_us",
    "su": STRATEGY | {"ut": "update_time_us", "c": "op_code"},
}
WIRE_MAPS = {
    "AlgoUpdate": ALGO_UPDATE,
    "ConditionalOrderTriggerReject": CONDITIONAL_ORDER_TRIGGER_REJECT,
    "GridUpdate": GRID_UPDATE,
    "StrategyUpdate": STRATEGY_UPDATE,
    "AccountPosition": ACCOUNT_POSITION,
    "BalanceUpdate": BALANCE_UPDATE,
    "ExternalLockUpdate": EXTERNAL_LOCK_UPDATE,
    "ExecutionReport": EXECUTION_REPORT,
    "ListStatus": LIST_STATUS,
    "EventStreamTerminated": EVENT_STREAM_TERMINATED,
    "ListenKeyExpired": LISTEN_KEY_EXPIRED,
    "AccountUpdate": ACCOUNT_UPDATE,
    "MarginCall": MARGIN_CALL,
    "OrderTradeUpdate": ORDER_TRADE_UPDATE,
    "AccountConfigUpdate": ACCOUNT_CONFIG_UPDATE,
    "TradeLite": TRADE_LITE,
    "Trade": TRADE,
    "AggTrade": AGG_TRADE,
    "BlockTrade": BLOCK_TRADE,
    "ForceOrder": FORCE_ORDER,
    "DepthUpdate": DEPTH_UPDATE,
    "RpiDepthUpdate": DEPTH_UPDATE,
    "DepthSnapshot": DEPTH_SNAPSHOT,
    "BookTicker": BOOK_TICKER,
    "MiniTicker": MINI_TICKER,
    "Ticker": TICKER,
    "RollingTicker": ROLLING_TICKER,
    "AvgPrice": AVG_PRICE,
    "ReferencePrice": REFERENCE_PRICE,
    "Kline": KLINE,
    "ContinuousKline": CONTINUOUS_KLINE,
    "IndexPriceKline": INDEX_PRICE_KLINE,
    "MarkPriceKline": MARK_PRICE_KLINE,
    "MarkPrice": MARK_PRICE,
    "IndexPrice": INDEX_PRICE,
    "CompositeIndex": COMPOSITE_INDEX,
    "ContractInfo": CONTRACT_INFO,
    "AssetIndex": ASSET_INDEX,
    "TradingSession": TRADING_SESSION,
}

# Fields that come from the connection or the frame's context rather than the payload.
CONTEXT_FIELDS = {"market", "received_at_us", "extra", "ignored", "subscription_id", "timezone"}


@dataclass(frozen=True)
class Case:
    """How a vector arrives: its event class and, where the payload needs it, the stream name."""

    cls: str
    stream: str | None = None
    from_stream: frozenset[str] = frozenset()
    """Fields the stream name supplies because the payload lacks them."""
    also: tuple[Market, ...] = ()
    """Other markets that send the same payload (COIN-M user data has no vectors of its own)."""


COINM = (Market.COINM,)

# Every stream-payload vector, with the event class it must become. A vector file missing here
# fails test_every_vector_file_is_classified, so a new official payload cannot go untested.
CASES = {
    "spot/aggTrade.json": Case("AggTrade"),
    "spot/avgPrice.json": Case("AvgPrice"),
    "spot/blockTrade.json": Case("BlockTrade"),
    "spot/bookTicker.json": Case("BookTicker", "bnbusdt@bookTicker"),
    "spot/bookTicker_all_RETIRED.json": Case("BookTicker", "!bookTicker"),
    "spot/combined_wrapper_example.json": Case("AggTrade"),
    "spot/depth_diff.json": Case("DepthUpdate"),
    "spot/depth_partial.json": Case("DepthSnapshot", "bnbbtc@depth5@100ms", frozenset({"symbol"})),
    "spot/kline.json": Case("Kline", "bnbbtc@kline_1m"),
    "spot/kline_utc8.json": Case("Kline", "bnbbtc@kline_1m@+08:00"),
    "spot/miniTicker.json": Case("MiniTicker"),
    "spot/miniTicker_arr.json": Case("MiniTicker", "!miniTicker@arr"),
    "spot/referencePrice.json": Case("ReferencePrice"),
    "spot/ticker.json": Case("Ticker"),
    "spot/ticker_1h.json": Case("RollingTicker"),
    "spot/ticker_1h_arr.json": Case("RollingTicker", "!ticker_1h@arr"),
    "spot/ticker_arr_RETIRED.json": Case("Ticker", "!ticker@arr"),
    "spot/trade.json": Case("Trade"),
    "usdm/aggTrade.json": Case("AggTrade"),
    "usdm/assetIndex_arr.json": Case("AssetIndex", "!assetIndex@arr"),
    "usdm/bookTicker.json": Case("BookTicker"),
    "usdm/bookTicker_all.json": Case("BookTicker", "!bookTicker"),
    "usdm/compositeIndex.json": Case("CompositeIndex"),
    "usdm/continuousKline.json": Case("ContinuousKline"),
    "usdm/contractInfo.json": Case("ContractInfo", "!contractInfo"),
    "usdm/depth_diff.json": Case("DepthUpdate", "btcusdt@depth@100ms"),
    "usdm/depth_partial.json": Case("DepthSnapshot", "btcusdt@depth5@500ms"),
    "usdm/forceOrder.json": Case("ForceOrder"),
    "usdm/forceOrder_arr.json": Case("ForceOrder", "!forceOrder@arr"),
    "usdm/kline.json": Case("Kline"),
    "usdm/markPrice.json": Case("MarkPrice"),
    "usdm/markPrice_arr.json": Case("MarkPrice", "!markPrice@arr@1s"),
    "usdm/miniTicker.json": Case("MiniTicker"),
    "usdm/miniTicker_arr.json": Case("MiniTicker"),
    "usdm/rpiDepth.json": Case("RpiDepthUpdate", "btcusdt@rpiDepth@500ms"),
    "usdm/ticker.json": Case("Ticker"),
    "usdm/ticker_arr.json": Case("Ticker"),
    "usdm/tradingSession.json": Case("TradingSession", "tradingSession"),
    "coinm/aggTrade.json": Case("AggTrade"),
    "coinm/bookTicker.json": Case("BookTicker"),
    "coinm/bookTicker_all.json": Case("BookTicker"),
    "coinm/continuousKline.json": Case("ContinuousKline"),
    "coinm/contractInfo.json": Case("ContractInfo"),
    "coinm/depth_diff.json": Case("DepthUpdate"),
    "coinm/depth_partial.json": Case("DepthSnapshot", "btcusd_200626@depth5@100ms"),
    "coinm/forceOrder.json": Case("ForceOrder"),
    "coinm/forceOrder_arr.json": Case("ForceOrder"),
    "coinm/indexPrice.json": Case("IndexPrice"),
    "coinm/indexPriceKline.json": Case("IndexPriceKline"),
    "coinm/kline.json": Case("Kline"),
    "coinm/markPrice.json": Case("MarkPrice"),
    "coinm/markPriceKline.json": Case("MarkPriceKline"),
    "coinm/markPrice_pair_arr.json": Case("MarkPrice", "btcusd@markPrice@1s"),
    "coinm/miniTicker.json": Case("MiniTicker"),
    "coinm/miniTicker_arr.json": Case("MiniTicker"),
    "coinm/ticker.json": Case("Ticker"),
    "coinm/ticker_arr.json": Case("Ticker"),
    "spot-user/balanceUpdate.json": Case("BalanceUpdate"),
    "spot-user/balanceUpdate.legacy_listenKey.json": Case("BalanceUpdate"),
    "spot-user/eventStreamTerminated.json": Case("EventStreamTerminated"),
    "spot-user/eventStreamTerminated.wsapi_2025-08-12.json": Case("EventStreamTerminated"),
    "spot-user/executionReport.json": Case("ExecutionReport"),
    "spot-user/executionReport.legacy_listenKey.json": Case("ExecutionReport"),
    "spot-user/externalLockUpdate.json": Case("ExternalLockUpdate"),
    "spot-user/externalLockUpdate.legacy_listenKey.json": Case("ExternalLockUpdate"),
    "spot-user/listStatus.json": Case("ListStatus"),
    "spot-user/listStatus.legacy_listenKey.json": Case("ListStatus"),
    "spot-user/listenKeyExpired.legacy_listenKey.json": Case("ListenKeyExpired"),
    "spot-user/outboundAccountPosition.json": Case("AccountPosition"),
    "spot-user/outboundAccountPosition.legacy_listenKey.json": Case("AccountPosition"),
    "usdm-user/ACCOUNT_CONFIG_UPDATE.leverage.json": Case("AccountConfigUpdate", also=COINM),
    "usdm-user/ACCOUNT_CONFIG_UPDATE.multiAssets.json": Case("AccountConfigUpdate", also=COINM),
    "usdm-user/ACCOUNT_UPDATE.json": Case("AccountUpdate", also=COINM),
    "usdm-user/MARGIN_CALL.json": Case("MarginCall", also=COINM),
    "usdm-user/ORDER_TRADE_UPDATE.json": Case("OrderTradeUpdate", also=COINM),
    "usdm-user/TRADE_LITE.json": Case("TradeLite"),
    "usdm-user/listenKeyExpired.json": Case("ListenKeyExpired", also=COINM),
    "usdm-user/ALGO_UPDATE.json": Case("AlgoUpdate"),
    "usdm-user/CONDITIONAL_ORDER_TRIGGER_REJECT.json": Case("ConditionalOrderTriggerReject"),
    "usdm-user/GRID_UPDATE.json": Case("GridUpdate"),
    "usdm-user/STRATEGY_UPDATE.json": Case("StrategyUpdate"),
    "coinm-user/GRID_UPDATE.json": Case("GridUpdate"),
    "coinm-user/STRATEGY_UPDATE.json": Case("StrategyUpdate"),
    # After the 2026-06-30 integration (Binance's SDK examples): st, more ps, USD-M ap.
    "usdm/aggTrade.merged.json": Case("AggTrade"),
    "usdm/bookTicker.merged.json": Case("BookTicker"),
    "usdm/bookTicker_all.merged.json": Case("BookTicker", "!bookTicker"),
    "usdm/contractInfo.merged.json": Case("ContractInfo", "!contractInfo"),
    "usdm/depth_diff.merged.json": Case("DepthUpdate", "bnbusdt@depth@100ms"),
    "usdm/forceOrder_arr.merged.json": Case("ForceOrder", "!forceOrder@arr"),
    "usdm/markPrice.merged.json": Case("MarkPrice"),
    "usdm/markPrice_arr.merged.json": Case("MarkPrice", "!markPrice@arr@1s"),
    "usdm/miniTicker.merged.json": Case("MiniTicker"),
    "usdm/miniTicker_arr.merged.json": Case("MiniTicker", "!miniTicker@arr"),
    "usdm/rpiDepth.merged.json": Case("RpiDepthUpdate", "bnbusdt@rpiDepth@500ms"),
    "usdm/ticker.merged.json": Case("Ticker"),
    "usdm/ticker_arr.merged.json": Case("Ticker", "!ticker@arr"),
    "coinm/aggTrade.merged.json": Case("AggTrade"),
    "coinm/bookTicker.merged.json": Case("BookTicker"),
    "coinm/bookTicker_all.merged.json": Case("BookTicker", "!bookTicker"),
    "coinm/contractInfo.merged.json": Case("ContractInfo", "!contractInfo"),
    "coinm/depth_diff.merged.json": Case("DepthUpdate"),
    "coinm/forceOrder_arr.merged.json": Case("ForceOrder", "!forceOrder@arr"),
    "coinm/markPrice.merged.json": Case("MarkPrice"),
    "coinm/markPrice_pair_arr.merged.json": Case("MarkPrice", "btcusd@markPrice@1s"),
    "coinm/miniTicker_arr.merged.json": Case("MiniTicker", "!miniTicker@arr"),
    "coinm/ticker_arr.merged.json": Case("Ticker", "!ticker@arr"),
}
NOT_RECORDS = {
    "spot/serverShutdown.json": "a connection event (ServerShutdown), tested in test_messages",
    "spot/serverShutdown.combined.json": "a connection event (ServerShutdown)",
    "spot/control_messages.json": "control frames and replies, tested in test_messages",
    "usdm/control_messages.json": "control frames and replies",
    "spot-user/wsapi_user_stream_requests.json": "WebSocket API requests and their replies",
}
MARKETS = {"spot": Market.SPOT, "usdm": Market.USDM, "coinm": Market.COINM}
SYMBOL_TYPES = {1: "usdm", 2: "coinm"}  # 'st', as Binance's SDK describes it: 1 = UM, 2 = CM


def vector_files() -> list[str]:
    return sorted(
        str(path.relative_to(VECTORS_DIR))
        for path in VECTORS_DIR.glob("*/*.json")
        if not path.name.startswith("rest_")
    )


def test_every_vector_file_is_classified() -> None:
    unclassified = [name for name in vector_files() if name not in CASES | NOT_RECORDS]
    assert unclassified == []
    assert set(CASES) | set(NOT_RECORDS) <= set(vector_files())


def test_connection_events_are_not_records() -> None:
    for name in ["spot/serverShutdown.json", "spot/serverShutdown.combined.json"]:
        frame = orjson.dumps(vector(name))
        assert [type(e) for e in FrameParser(Market.SPOT).parse(frame, 0)] == [ServerShutdown]


def unwrap(message: Any) -> tuple[list[Any], int | None]:
    """The payload objects of a frame, as the parser must see them, and the wrapper's context."""
    if isinstance(message, dict) and "data" in message and "stream" in message:
        message = message["data"]
    subscription_id = None
    if isinstance(message, dict) and "event" in message:
        subscription_id = message.get("subscriptionId")
        message = message["event"]
    return (message if isinstance(message, list) else [message]), subscription_id


def micros(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def assert_same(field: str, wire: Any, decoded: Any, where: str = "") -> None:
    field = f"{field} ({where})" if where else field
    if field.split(" ")[0].endswith("_us"):
        assert micros(decoded) == int(wire) * 1000, field
    elif isinstance(decoded, Decimal):
        expected = Decimal(repr(wire)) if isinstance(wire, float) else Decimal(wire)
        assert decoded == expected, field
        assert decoded.as_tuple().exponent == -18, field  # scale 18 on the wire, value exact
    elif decoded is None:
        assert wire in (None, ""), f"{field}: {wire!r} became null"
    else:
        assert decoded == wire, field
        assert type(decoded) is type(wire), field


def check_object(
    wire: dict[str, Any],
    mapping: dict[str, Any],
    target: dict[str, Any],
    top: dict[str, Any],
    path: str,
) -> set[str]:
    """Check every key of ``wire``; return the record fields it accounted for."""
    used = set()
    for key, value in wire.items():
        where = path + key
        spec = mapping.get(key)
        if spec is None:
            assert top["extra"].get(where) == orjson.dumps(value).decode(), f"{where} was dropped"
        elif spec is EVENT_TYPE:
            pass
        elif spec is IGNORED:
            assert top["ignored"][where] == orjson.dumps(value).decode(), where
        elif isinstance(spec, dict):
            used |= check_object(value, spec, target, top, where + ".")
        elif isinstance(spec, Levels):
            got = [(level["price"], level["quantity"]) for level in target[spec.field]]
            assert got == [(Decimal(p), Decimal(q)) for p, q in value], where
            used.add(spec.field)
        elif isinstance(spec, Items):
            items = target[spec.field]
            assert len(items) == len(value), where
            for index, (item_wire, item) in enumerate(zip(value, items, strict=True)):
                check_object(item_wire, spec.mapping, item, top, f"{where}[{index}].")
            used.add(spec.field)
        elif isinstance(spec, Derived):
            assert target[spec.field] == spec.derive(value), where
            used.add(spec.field)
        else:
            assert_same(spec, value, target[spec], where)
            used.add(spec)
    return used


def record_of(event: RecordEvent) -> dict[str, Any]:
    """Encode as the gateway does, decode as a consumer does (fastavro)."""
    # fastavro must write from the datum what the compiled writer did: three paths, one encoding.
    schema = CATALOG[SchemaKey(event.schema_group, event.KIND)]
    reference = io.BytesIO()
    fastavro.schemaless_writer(reference, schema.parsed, event_datum(event))
    assert encoded(event).endswith(reference.getvalue())
    return roundtrip(event)


def market_cases() -> Iterator[tuple[str, Market]]:
    for name, case in sorted(CASES.items()):
        yield name, MARKETS[name.split("/")[0].removesuffix("-user")]
        for market in case.also:
            yield name, market


@pytest.mark.parametrize(("name", "market"), list(market_cases()), ids=str)
def test_vector_arrives_exactly_and_completely(name: str, market: Market) -> None:
    case = CASES[name]
    message = vector(name)
    events = FrameParser(market).parse(orjson.dumps(message), RECEIVED_AT_US, stream=case.stream)
    payloads, subscription_id = unwrap(message)
    assert [type(e).__name__ for e in events] == [case.cls] * len(payloads)
    for event, payload in zip(events, payloads, strict=True):
        assert not isinstance(event, ControlReply | ServerShutdown)
        record = record_of(event)
        used = check_object(payload, WIRE_MAPS[case.cls], record, record, "")
        # A futures contract's record belongs to the market its 'st' names, whichever
        # connection carried it (docs/futures-merger.md).
        assert record["market"] == SYMBOL_TYPES.get(payload.get("st"), market.value)
        assert micros(record["received_at_us"]) == RECEIVED_AT_US
        if "subscription_id" in record:
            assert record["subscription_id"] == subscription_id
        # Nothing invented: every field with a value came from the payload or the context.
        invented = {k for k, v in record.items() if v is not None and k not in used}
        assert invented <= CONTEXT_FIELDS | case.from_stream, invented
        assert event.partition_key
        assert event.record_time_us > 0


def test_spot_partial_depth_takes_its_symbol_from_the_stream() -> None:
    [event] = FrameParser(Market.SPOT).parse(
        orjson.dumps(vector("spot/depth_partial.json")), 0, stream="bnbbtc@depth20@100ms"
    )
    assert isinstance(event, DepthSnapshot)
    assert (event.symbol, event.partition_key) == ("BNBBTC", "BNBBTC")


def test_utc8_klines_say_so_and_utc_klines_do_not() -> None:
    frame = orjson.dumps(vector("spot/kline_utc8.json"))
    [utc8] = FrameParser(Market.SPOT).parse(frame, 0, stream="bnbbtc@kline_1m@+08:00")
    [utc] = FrameParser(Market.SPOT).parse(frame, 0, stream="bnbbtc@kline_1m")
    assert isinstance(utc8, Kline) and isinstance(utc, Kline)
    assert (utc8.timezone, utc.timezone) == ("+08:00", None)
