"""The REST side of the simulator: a few ``/api/v3`` market-data endpoints on 127.0.0.1.

Binance serves REST and streams from different hosts, so this runs on its own port. Answers
come from the :class:`~gateway.simulator.history.History`, so a gateway backfilling over REST sees
the very events the streams carried. Every response carries ``X-MBX-USED-WEIGHT-1M`` (FACTS §7);
``X-MBX-TIME-UNIT: MICROSECOND`` switches times to microseconds (FACTS §1.1).

Where the docs leave a choice open: ``limit`` outside ``1..1000`` is clamped rather than refused,
and a ``fromId`` older than the retained history starts at the oldest retained event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from itertools import islice

import orjson
from aiohttp import web

from gateway.simulator.engine import Clock, SymbolSpec
from gateway.simulator.history import History
from gateway.simulator.limits import ENDPOINT_WEIGHTS, REQUEST_WEIGHT_PER_MINUTE, WeightCounter
from gateway.simulator.payloads import TimeUnit, format_decimal, rest_agg_trade, rest_trade

logger = logging.getLogger(__name__)

USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
TIME_UNIT_HEADER = "X-MBX-TIME-UNIT"
DEFAULT_LIMIT = 500
MAX_LIMIT = 1_000

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BinanceRequestError(Exception):
    """A request Binance would refuse with HTTP 400 and ``{"code", "msg"}``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


class RestServer:
    """Serves ``/api/v3`` market data from the simulator's history."""

    def __init__(
        self, host: str, port: int, history: History, specs: Sequence[SymbolSpec], clock_us: Clock
    ) -> None:
        self._host, self._port = host, port
        self._history = history
        self._specs = {spec.symbol: spec for spec in specs}
        self._clock_us = clock_us
        self._weights = WeightCounter()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._runner is None:
            raise RuntimeError("REST server not started")
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def application(self) -> web.Application:
        """The aiohttp application (also usable with aiohttp's test client)."""
        app = web.Application(middlewares=[self._binance_conventions])
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/aggTrades", self._agg_trades)
        app.router.add_get("/api/v3/trades", self._trades)
        app.router.add_get("/api/v3/historicalTrades", self._historical_trades)
        return app

    async def start(self) -> None:
        """Listen on the configured host and port."""
        # No access log: one INFO line per request is a metric, not a log.
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        logger.info("REST server listening on %s", self.url)

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _binance_conventions(
        self, request: web.Request, handler: _Handler
    ) -> web.StreamResponse:
        """Charge the request weight, report it, and render refusals as Binance does."""
        weight = ENDPOINT_WEIGHTS.get(request.path, 1)
        used = self._weights.add(request.remote or "", weight, self._clock_us() // 1_000)
        try:
            response = await handler(request)
        except BinanceRequestError as error:
            response = _json({"code": error.code, "msg": error.msg}, status=400)
        except web.HTTPException as error:
            error.headers[USED_WEIGHT_HEADER] = str(used)
            raise
        response.headers[USED_WEIGHT_HEADER] = str(used)
        return response

    async def _ping(self, request: web.Request) -> web.Response:
        return _json({})

    async def _time(self, request: web.Request) -> web.Response:
        return _json({"serverTime": _time_unit(request).convert(self._clock_us())})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        symbols = self._requested_symbols(request)
        return _json(
            {
                "timezone": "UTC",
                "serverTime": _time_unit(request).convert(self._clock_us()),
                "rateLimits": _RATE_LIMITS,
                "exchangeFilters": [],
                "symbols": [_symbol_info(self._specs[symbol]) for symbol in symbols],
                "sors": [],
            }
        )

    async def _agg_trades(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        limit = _limit(request)
        from_id = _int_param(request, "fromId")
        start_ms, end_ms = _int_param(request, "startTime"), _int_param(request, "endTime")
        if start_ms is None and end_ms is None:
            records = self._history.agg_trades_from(symbol, from_id, limit)
        else:
            first_id = from_id or 0
            matching = (
                agg
                for agg in self._history.agg_trade_records(symbol)
                if agg.agg_trade_id >= first_id
                and _within(agg.trade_time_us // 1_000, start_ms, end_ms)
            )
            records = list(islice(matching, limit))
        unit = _time_unit(request)
        return _json([rest_agg_trade(agg, unit) for agg in records])

    async def _trades(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        records = self._history.trades_from(symbol, None, _limit(request))
        unit = _time_unit(request)
        return _json([rest_trade(trade, unit) for trade in records])

    async def _historical_trades(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        records = self._history.trades_from(symbol, _int_param(request, "fromId"), _limit(request))
        unit = _time_unit(request)
        return _json([rest_trade(trade, unit) for trade in records])

    def _symbol(self, request: web.Request) -> str:
        symbol = request.query.get("symbol")
        if not symbol:
            raise BinanceRequestError(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        if symbol not in self._specs:
            raise BinanceRequestError(-1121, "Invalid symbol.")
        return symbol

    def _requested_symbols(self, request: web.Request) -> list[str]:
        if "symbol" in request.query:
            return [self._symbol(request)]
        if "symbols" in request.query:
            try:
                symbols = orjson.loads(request.query["symbols"])
            except orjson.JSONDecodeError:
                raise BinanceRequestError(
                    -1100, "Illegal characters found in parameter 'symbols'."
                ) from None
            if not isinstance(symbols, list) or any(s not in self._specs for s in symbols):
                raise BinanceRequestError(-1121, "Invalid symbol.")
            return [str(symbol) for symbol in symbols]
        return list(self._specs)


# The rate limiters of the docs' enums example (vector spot/rest_rateLimits.json), with
# RAW_REQUESTS raised to 300,000 per 5 minutes on 2026-04-02 (FACTS §7).
_RATE_LIMITS = [
    {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": REQUEST_WEIGHT_PER_MINUTE,
    },
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 1, "limit": 10},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300_000},
]

_ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]


def _symbol_info(spec: SymbolSpec) -> dict[str, object]:
    """One ``symbols[]`` entry, shaped like the docs' exchangeInfo example."""
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
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


def _json(body: object, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _int_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        raise BinanceRequestError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(text)


def _limit(request: web.Request) -> int:
    limit = _int_param(request, "limit")
    return DEFAULT_LIMIT if limit is None else max(1, min(limit, MAX_LIMIT))


def _within(time_ms: int, start_ms: int | None, end_ms: int | None) -> bool:
    return (start_ms is None or time_ms >= start_ms) and (end_ms is None or time_ms <= end_ms)


def _time_unit(request: web.Request) -> TimeUnit:
    text = request.headers.get(TIME_UNIT_HEADER)
    if text is None:
        return TimeUnit.MILLISECOND
    try:
        return TimeUnit.parse(text)
    except ValueError:
        raise BinanceRequestError(
            -1100, f"Illegal characters found in header '{TIME_UNIT_HEADER}'."
        ) from None
