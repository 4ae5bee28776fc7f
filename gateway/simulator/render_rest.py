"""REST response bodies that depend on the market: depth snapshots, klines, exchangeInfo.

Pure (docs/binance.md §5, §7; vectors ``*/rest_*.json``). Spot's trade and aggregate-trade lists are in
:mod:`gateway.simulator.payloads`, next to the stream payloads they mirror.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.simulator.book import BookSnapshot
from gateway.simulator.candles import Candle
from gateway.simulator.engine import SymbolSpec
from gateway.simulator.markets import Market, profile
from gateway.simulator.payloads import Payload, format_decimal, price_text, qty_text
from gateway.simulator.render_futures import ONBOARD_MS, PERPETUAL_DELIVERY_MS
from gateway.simulator.render_market import levels


def rest_depth(market: Market, spec: SymbolSpec, snapshot: BookSnapshot, now_ms: int) -> Payload:
    """``GET depth``: spot ``lastUpdateId bids asks``; futures add ``E`` and ``T``."""
    body: Payload = {"lastUpdateId": snapshot.last_update_id}
    if market.is_futures:
        body |= {"E": now_ms, "T": now_ms}
    return body | {"bids": levels(spec, snapshot.bids), "asks": levels(spec, snapshot.asks)}


def rest_kline(spec: SymbolSpec, candle: Candle) -> list[object]:
    """One ``GET klines`` row: open time, OHLC, volume, close time, quote volume, count..."""
    return [
        candle.open_time_ms,
        price_text(spec, candle.open),
        price_text(spec, candle.high),
        price_text(spec, candle.low),
        price_text(spec, candle.close),
        qty_text(spec, candle.volume),
        candle.close_time_ms,
        format_decimal(candle.quote_volume, spec.price_decimals),
        candle.trades,
        qty_text(spec, candle.taker_buy_volume),
        format_decimal(candle.taker_buy_quote_volume, spec.price_decimals),
        "0",
    ]


def rest_ticker_24hr(spec: SymbolSpec, candle: Candle, last_price: int) -> Payload:
    """One ``GET ticker/24hr`` object: the rolling day's statistics, ``count`` its trades."""
    return {
        "symbol": spec.symbol,
        "priceChange": price_text(spec, last_price - candle.open),
        "lastPrice": price_text(spec, last_price),
        "openPrice": price_text(spec, candle.open),
        "highPrice": price_text(spec, candle.high),
        "lowPrice": price_text(spec, candle.low),
        "volume": qty_text(spec, candle.volume),
        "quoteVolume": format_decimal(candle.quote_volume, spec.price_decimals),
        "openTime": candle.open_time_ms,
        "closeTime": candle.close_time_ms,
        "firstId": candle.first_trade_id,
        "lastId": candle.last_trade_id,
        "count": candle.trades,
    }


def rate_limits(market: Market) -> list[Payload]:
    """The ``rateLimits`` of exchangeInfo.

    Spot: the docs' example with RAW_REQUESTS raised to 300,000 per 5 minutes on 2026-04-02
    (docs/binance.md §7); futures: REQUEST_WEIGHT 2400/min and ORDERS 1200/min, 300/10 s (docs/binance.md §1.3).
    """
    weight = {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": profile(market).request_weight_per_minute,
    }
    if market is Market.SPOT:
        return [
            weight,
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 1, "limit": 10},
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": 300_000,
            },
        ]
    return [
        weight,
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1_200},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
    ]


def futures_symbol_info(market: Market, spec: SymbolSpec, status: str = "TRADING") -> Payload:
    """One ``symbols[]`` entry of ``GET /fapi/v1/exchangeInfo`` (``/dapi``: with ``pair`` margins).

    USDⓈ-M calls the contract's state ``status``, COIN-M ``contractStatus``.
    """
    margin = spec.base_asset if market is Market.COINM else spec.quote_asset
    return {
        "symbol": spec.symbol,
        "pair": spec.pair,
        "contractType": spec.contract_type,
        "deliveryDate": PERPETUAL_DELIVERY_MS,
        "onboardDate": ONBOARD_MS,
        "status" if market is Market.USDM else "contractStatus": status,
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": margin,
        "pricePrecision": spec.price_decimals,
        "quantityPrecision": spec.qty_decimals,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": price_text(spec, spec.tick_size),
                "maxPrice": price_text(spec, spec.initial_price * 100),
                "tickSize": price_text(spec, spec.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": qty_text(spec, spec.lot_size),
                "maxQty": qty_text(spec, spec.lot_size * 10**6),
                "stepSize": qty_text(spec, spec.lot_size),
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def futures_exchange_info(
    market: Market,
    specs: list[SymbolSpec],
    now_ms: int,
    statuses: Mapping[str, str] | None = None,
) -> Payload:
    """``GET /fapi/v1/exchangeInfo`` / ``/dapi/v1/exchangeInfo`` (every symbol TRADING unless
    ``statuses`` says otherwise)."""
    statuses = statuses or {}
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": rate_limits(market),
        "exchangeFilters": [],
        "symbols": [
            futures_symbol_info(market, spec, statuses.get(spec.symbol, "TRADING"))
            for spec in specs
        ],
    }


def limit_body(status: int, ip: str, limit: int) -> dict[str, object]:
    """The body of a 429 (over the weight budget) or 418 (banned) answer."""
    if status == 418:
        return {
            "code": -1003,
            "msg": f"Way too many requests; IP({ip}) banned. Please use WebSocket Streams for live updates to avoid bans.",
        }
    return {
        "code": -1003,
        "msg": f"Too many requests; current limit of IP({ip}) request weight is {limit} per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
    }


_ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]


def spot_symbol_info(spec: SymbolSpec, status: str = "TRADING") -> dict[str, object]:
    """One spot ``symbols[]`` entry, shaped like the docs' exchangeInfo example."""
    return {
        "symbol": spec.symbol,
        "status": status,
        "baseAsset": spec.base_asset,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote_asset,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": _ORDER_TYPES,
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "opoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "pegInstructionsAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": format_decimal(spec.tick_size),
                "maxPrice": format_decimal(spec.initial_price * 100),
                "tickSize": format_decimal(spec.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": format_decimal(spec.lot_size),
                "maxQty": format_decimal(spec.lot_size * 10**6),
                "stepSize": format_decimal(spec.lot_size),
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }
