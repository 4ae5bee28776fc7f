"""The REST side of the simulator: one market's market-data endpoints on 127.0.0.1.

Spot ``/api/v3``, USDⓈ-M ``/fapi/v1``, COIN-M ``/dapi/v1``: ping, time, exchangeInfo, depth,
aggTrades, trades, historicalTrades, klines (futures: continuousKlines too), the futures
``listenKey``, and the signed account views a reconciling client reads (``openOrders``,
``account``, futures ``positionRisk``). Answers come from the same market and history the streams publish, so a gateway backfilling over REST sees the very
events the streams carried, and a depth snapshot fits the diff stream's update ids.

Limits (docs/binance.md §7): every response carries ``X-MBX-USED-WEIGHT-1M``; over the weight budget a
request gets 429 with ``Retry-After``; a client that goes on after a 429 gets 418 (banned) with
``Retry-After`` until the ban ends. ``X-MBX-TIME-UNIT: MICROSECOND`` switches times to
microseconds (docs/binance.md §1.1). Faults (``POST /_simulator/faults``) can delay or fail requests.

Where the docs leave a choice open: ``limit`` outside its range is clamped rather than refused,
a ``fromId`` older than the retained history starts at the oldest retained event, the retired
spot ``/api/v3/userDataStream`` answers 404 like any unknown path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from itertools import islice
from typing import Any

import orjson
from aiohttp import web

from gateway.simulator.candles import DAY_MS, SPOT_INTERVALS, parse_offset
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.engine import Clock, SymbolSpec
from gateway.simulator.faults import RestFaults
from gateway.simulator.history import History
from gateway.simulator.limits import RestLimiter
from gateway.simulator.market import SimulatedMarket
from gateway.simulator.markets import Market, depth_weight, klines_weight, profile
from gateway.simulator.payloads import (
    TimeUnit,
    futures_rest_agg_trade,
    futures_rest_trade,
    rest_agg_trade,
    rest_trade,
)
from gateway.simulator.payloads_user import (
    rest_futures_account,
    rest_open_order,
    rest_position_risk,
    rest_spot_account,
)
from gateway.simulator.render_rest import (
    futures_exchange_info,
    limit_body,
    rate_limits,
    rest_depth,
    rest_kline,
    rest_ticker_24hr,
    spot_symbol_info,
)
from gateway.simulator.streams import CONTRACT_TYPES
from gateway.simulator.userdata import Account, ListenKeyError, ListenKeys, query_signature_valid

logger = logging.getLogger(__name__)

USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
TIME_UNIT_HEADER = "X-MBX-TIME-UNIT"
API_KEY_HEADER = "X-MBX-APIKEY"
FAULTS_PATH = "/_simulator/faults"
DEFAULT_LIMIT = 500
MAX_LIMIT = 1_000
_FUTURES_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1_000)
DEFAULT_RECV_WINDOW_MS = 5_000
# Signed account views, without a symbol (Binance's REST docs; docs/binance.md §7 covers market data only):
# path under the market's REST root -> weight.
ACCOUNT_VIEWS: dict[Market, dict[str, int]] = {
    Market.SPOT: {"/api/v3/openOrders": 80, "/api/v3/account": 20},
    Market.USDM: {
        "/fapi/v1/openOrders": 40,
        "/fapi/v3/account": 5,
        "/fapi/v3/positionRisk": 5,
    },
    Market.COINM: {
        "/dapi/v1/openOrders": 40,
        "/dapi/v1/account": 5,
        "/dapi/v1/positionRisk": 1,
    },
}

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FaultInjector = Callable[[dict[str, Any]], None]


class BinanceRequestError(Exception):
    """A request Binance would refuse with ``{"code", "msg"}`` (HTTP 400 unless said)."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


class RestServer:
    """Serves one market's REST endpoints from the simulator's market and history."""

    def __init__(
        self,
        config: SimulatorConfig,
        market: SimulatedMarket,
        history: History,
        clock_us: Clock,
        *,
        listen_keys: ListenKeys | None = None,
        faults: RestFaults | None = None,
        inject_fault: FaultInjector | None = None,
        on_listen_key_closed: Callable[[str], None] | None = None,
        account: Account | None = None,
    ) -> None:
        self._config = config
        self._host, self._port = config.host, config.rest_port
        self._market = market
        self._kind = market.market
        self._prefix = profile(self._kind).rest_prefix
        self._weights = profile(self._kind).weights
        self._history = history
        self._specs: dict[str, SymbolSpec] = market.specs  # live: listings add to it
        self._clock_us = clock_us
        self._limiter = RestLimiter(
            config.weight_limit, config.rest_weight_window_s, config.rest_ban_s
        )
        self._listen_keys = listen_keys or ListenKeys(config.listen_key_validity_s)
        self._faults = faults or RestFaults()
        self._inject_fault = inject_fault
        self._on_listen_key_closed = on_listen_key_closed
        self._account = account or Account(self._kind)
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
        routes = {
            "ping": self._ping,
            "time": self._time,
            "exchangeInfo": self._exchange_info,
            "depth": self._depth,
            "aggTrades": self._agg_trades,
            "trades": self._trades,
            "historicalTrades": self._historical_trades,
            "klines": self._klines,
            "ticker/24hr": self._ticker_24hr,
        }
        if self._kind.is_futures:
            routes["continuousKlines"] = self._continuous_klines
        for name, handler in routes.items():
            app.router.add_get(f"{self._prefix}/{name}", handler)
        if self._kind.is_futures:
            path = f"{self._prefix}/listenKey"
            app.router.add_post(path, self._listen_key_create)
            app.router.add_put(path, self._listen_key_keepalive)
            app.router.add_delete(path, self._listen_key_close)
        for path in ACCOUNT_VIEWS[self._kind]:
            app.router.add_get(path, self._account_view)
        app.router.add_post(FAULTS_PATH, self._fault)
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

    # --- conventions --------------------------------------------------------------------------

    def _weight(self, request: web.Request) -> int:
        if (account_weight := ACCOUNT_VIEWS[self._kind].get(request.path)) is not None:
            return account_weight
        name = request.path.rsplit("/", 1)[-1]
        if name == "depth":
            return depth_weight(self._kind, self._depth_limit(request, check=False))
        if name == "24hr" and "symbol" in request.query:
            return 1 if self._kind.is_futures else 2
        if name in ("klines", "continuousKlines") and self._kind.is_futures:
            return klines_weight(self._kind, _int_param(request, "limit", check=False) or 500)
        return self._weights.get(name, 1)

    @web.middleware
    async def _binance_conventions(
        self, request: web.Request, handler: _Handler
    ) -> web.StreamResponse:
        """Faults, weight, 429/418, and refusals rendered as Binance does."""
        if request.path == FAULTS_PATH:
            return await handler(request)
        delay = self._faults.take_delay()
        if delay:
            await asyncio.sleep(delay)
        failure = self._faults.take_error()
        if failure is not None:
            return _json(
                {"code": -1000, "msg": "An unknown error occurred (simulated)."}, status=failure
            )
        decision = self._limiter.charge(
            request.remote or "", self._weight(request), time.monotonic()
        )
        headers = {USED_WEIGHT_HEADER: str(decision.used_weight)}
        if decision.status != 200:
            headers["Retry-After"] = str(decision.retry_after_s)
            return _json(
                limit_body(decision.status, request.remote or "", self._config.weight_limit),
                status=decision.status,
                headers=headers,
            )
        try:
            response = await handler(request)
        except BinanceRequestError as error:
            response = _json({"code": error.code, "msg": error.msg}, status=error.status)
        except web.HTTPException as error:
            error.headers.update(headers)
            raise
        response.headers.update(headers)
        return response

    # --- market data --------------------------------------------------------------------------

    async def _ping(self, request: web.Request) -> web.Response:
        return _json({})

    async def _time(self, request: web.Request) -> web.Response:
        return _json({"serverTime": _time_unit(request).convert(self._clock_us())})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        symbols = self._requested_symbols(request)
        now = _time_unit(request).convert(self._clock_us())
        statuses = self._market.status
        if self._kind.is_futures:
            specs = [self._specs[s] for s in symbols]
            return _json(futures_exchange_info(self._kind, specs, now, statuses))
        return _json(
            {
                "timezone": "UTC",
                "serverTime": now,
                "rateLimits": rate_limits(Market.SPOT),
                "exchangeFilters": [],
                "symbols": [spot_symbol_info(self._specs[s], statuses[s]) for s in symbols],
                "sors": [],
            }
        )

    def _depth_limit(self, request: web.Request, *, check: bool = True) -> int:
        limit = _int_param(request, "limit", check=check)
        if self._kind is Market.SPOT:
            return 100 if limit is None else max(1, min(limit, 5_000))
        if limit is None:
            return 500
        return next((valid for valid in _FUTURES_DEPTH_LIMITS if valid >= limit), 1_000)

    async def _depth(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        snapshot = self._market.book(symbol).snapshot(self._depth_limit(request))
        now_ms = self._clock_us() // 1_000
        return _json(rest_depth(self._kind, self._specs[symbol], snapshot, now_ms))

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
        unit, spec = _time_unit(request), self._specs[symbol]
        if self._kind is Market.SPOT:
            return _json([rest_agg_trade(agg, unit) for agg in records])
        return _json([futures_rest_agg_trade(spec, agg, unit) for agg in records])

    async def _trades(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        return self._trade_rows(
            request, symbol, self._history.trades_from(symbol, None, _limit(request))
        )

    async def _historical_trades(self, request: web.Request) -> web.Response:
        if self._kind.is_futures:
            self._api_key(request)  # MARKET_DATA: a known key, no signature (binance-streams.md)
        symbol = self._symbol(request)
        records = self._history.trades_from(symbol, _int_param(request, "fromId"), _limit(request))
        return self._trade_rows(request, symbol, records)

    def _trade_rows(
        self, request: web.Request, symbol: str, records: Sequence[Any]
    ) -> web.Response:
        unit = _time_unit(request)
        if self._kind is Market.SPOT:
            return _json([rest_trade(trade, unit) for trade in records])
        spec = self._specs[symbol]
        return _json([futures_rest_trade(spec, trade, unit) for trade in records])

    async def _klines(self, request: web.Request) -> web.Response:
        return self._kline_rows(request, self._symbol(request))

    async def _continuous_klines(self, request: web.Request) -> web.Response:
        """A pair's candles for one contract type: those its continuousKline stream carries (the
        pair's first contract's trades, as the stream renders them)."""
        pair = request.query.get("pair", "")
        contract_type = request.query.get("contractType", "")
        if not pair or not contract_type:
            raise BinanceRequestError(
                -1102, "Mandatory parameter 'pair' was not sent, was empty/null, or malformed."
            )
        if pair not in self._market.by_pair or contract_type.lower() not in CONTRACT_TYPES:
            raise BinanceRequestError(-1121, "Invalid symbol.")
        return self._kline_rows(request, self._market.by_pair[pair][0].symbol)

    def _kline_rows(self, request: web.Request, symbol: str) -> web.Response:
        interval = request.query.get("interval", "")
        # Futures REST klines gained 1s in 2026-04 (docs/binance.md §7): every market takes spot's list.
        if interval not in SPOT_INTERVALS:
            raise BinanceRequestError(-1120, "Invalid interval.")
        maximum = 1_500 if self._kind.is_futures else MAX_LIMIT
        limit = max(1, min(_int_param(request, "limit") or DEFAULT_LIMIT, maximum))
        now_ms = self._clock_us() // 1_000
        start = _int_param(request, "startTime") or 0
        end = _int_param(request, "endTime") or now_ms
        offset = parse_offset(request.query.get("timeZone", "")) if self._kind is Market.SPOT else 0
        rows = self._market.candles[symbol].history(interval, start, end, offset)
        rows = rows[:limit] if "startTime" in request.query else rows[-limit:]
        spec = self._specs[symbol]
        return _json([rest_kline(spec, row) for row in rows])

    async def _ticker_24hr(self, request: web.Request) -> web.Response:
        now_ms = self._clock_us() // 1_000
        one = "symbol" in request.query
        symbols = [self._symbol(request)] if one else sorted(self._specs)
        rows = []
        for symbol in symbols:
            candles = self._market.candles[symbol]
            day = candles.rolling(DAY_MS, now_ms)
            rows.append(rest_ticker_24hr(self._specs[symbol], day, candles.last_price))
        return _json(rows[0] if one else rows)

    # --- listen keys --------------------------------------------------------------------------

    def _api_key(self, request: web.Request) -> str:
        api_key = request.headers.get(API_KEY_HEADER, "")
        if api_key not in self._config.api_keys:
            raise BinanceRequestError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return api_key

    async def _listen_key_create(self, request: web.Request) -> web.Response:
        key = self._listen_keys.create(self._api_key(request), self._now_s())
        return _json({"listenKey": key})

    async def _listen_key_keepalive(self, request: web.Request) -> web.Response:
        self._api_key(request)
        key = request.query.get("listenKey") or self._listen_keys_of(request)
        try:
            return _json({"listenKey": self._listen_keys.keepalive(key, self._now_s())})
        except ListenKeyError as error:
            raise BinanceRequestError(error.code, error.msg) from None

    async def _listen_key_close(self, request: web.Request) -> web.Response:
        self._api_key(request)
        key = request.query.get("listenKey") or self._listen_keys_of(request)
        self._listen_keys.close(key)
        if self._on_listen_key_closed is not None:
            self._on_listen_key_closed(key)
        return _json({})

    def _listen_keys_of(self, request: web.Request) -> str:
        keys = self._listen_keys.keys_of(request.headers.get(API_KEY_HEADER, ""))
        return keys[0] if keys else ""

    def _now_s(self) -> float:
        return self._clock_us() / 1_000_000

    # --- signed account views -----------------------------------------------------------------

    def _check_signed(self, request: web.Request) -> None:
        """API key known, signature valid over the query as sent, timestamp in its window."""
        api_key = self._api_key(request)
        raw_query = request.raw_path.partition("?")[2]  # as sent: the signature covers it
        if not query_signature_valid(self._config.api_keys[api_key], raw_query):
            raise BinanceRequestError(-1022, "Signature for this request is not valid.")
        timestamp = _int_param(request, "timestamp")
        if timestamp is None:
            raise BinanceRequestError(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            )
        window = _int_param(request, "recvWindow") or DEFAULT_RECV_WINDOW_MS
        now_ms = self._clock_us() // 1_000
        if not now_ms - window <= timestamp <= now_ms + 1_000:
            raise BinanceRequestError(
                -1021, "Timestamp for this request is outside of the recvWindow."
            )

    async def _account_view(self, request: web.Request) -> web.Response:
        self._check_signed(request)
        account, now_us = self._account, self._clock_us()
        view = request.path.rsplit("/", 1)[-1]
        if view == "openOrders":
            orders = account.open_orders.values()
            return _json([rest_open_order(self._kind, order) for order in orders])
        if view == "positionRisk":
            return _json(rest_position_risk(self._specs, account.positions, now_us))
        if self._kind is Market.SPOT:
            return _json(rest_spot_account(account.balances(), now_us))
        return _json(rest_futures_account(account.balances(), now_us))

    # --- faults -------------------------------------------------------------------------------

    async def _fault(self, request: web.Request) -> web.Response:
        if self._inject_fault is None:
            raise web.HTTPNotFound()
        try:
            body = orjson.loads(await request.read())
            if not isinstance(body, dict):
                raise TypeError("the body must be a JSON object")
            self._inject_fault(body)
        except (ValueError, TypeError, KeyError) as error:
            return _json({"error": str(error)}, status=400)
        return _json({"injected": body.get("kind")})

    # --- parameters ---------------------------------------------------------------------------

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


def _json(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _int_param(request: web.Request, name: str, *, check: bool = True) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        if not check:
            return None
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
