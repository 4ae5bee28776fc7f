"""A Binance exchange double — spot, USDⓈ-M and COIN-M — on 127.0.0.1.

The ground truth for tests, demos and benchmarks. It is an independent oracle: it builds
Binance's payloads itself and never imports the gateway's parser or record code
(``gateway.binance``, ``gateway.records``, ``gateway.adapters``), so one misreading of the format
cannot hide in both. The contract is ``docs/binance.md`` and the example payloads in ``tests/data/binance``; where
Binance changed something (spot listen keys gone, USDⓈ-M routes, retired streams), the
simulator behaves like Binance does now.

One :class:`ExchangeSimulator` is one market (``SimulatorConfig.market``): its own WebSocket
port (``/ws``, ``/stream``; USDⓈ-M ``/public``, ``/market``, ``/private``; spot ``/ws-api/v3``)
and REST port (``/api/v3``, ``/fapi/v1``, ``/dapi/v1``). Run one per market to simulate several.

Modules, from pure to I/O::

    markets        per-market constants: paths, pings, message rates, weights, depth speeds
    engine         seeded books and taker orders: trades, aggregate trades, book changes
    book           order books, depth accumulators (U / u / pu)
    candles        1 s / 1 min candles; any kline interval or rolling window is a merge
    market         SimulatedMarket: the state of one market, renders any stream at any time
    payloads       trade / aggTrade payloads and REST rows, decimals, time units
    render_*       every other stream payload, futures-only payloads, REST bodies
    payloads_user  user-data events (spot WS API, futures listen keys)
    streams        stream-name grammar, routes, the catalogue each market serves
    control        SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_ / GET_PROPERTY replies
    limits         message rate, connection attempts, request weight with 429 -> 418
    userdata       listen keys, HMAC signatures, the simulated account
    wsapi          spot WebSocket API user-data requests
    history        bounded record of every trade and aggregate trade, queryable by id
    faults         faults on demand (Python, HTTP ``POST /_simulator/faults``, random mix)
    hub            stream name -> subscribers; encode once, write to all, drain once per burst
    trading        the loop that paces the market and publishes real-time events
    periodic       depth, klines, tickers, mark prices... on their cadence
    ws_server      stream endpoints and the WS API (websockets)
    rest           REST endpoints (aiohttp)
    replay         serve a JSONL capture of raw frames at N x speed
    exchange       ExchangeSimulator facade and serve()
    cli            ``gateway simulate`` / ``python -m gateway.simulator``
    bench          events/s one reader receives (``python -m gateway.simulator.bench``)
"""

from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator, serve
from gateway.simulator.faults import FaultKind
from gateway.simulator.hub import ConnectionStats
from gateway.simulator.markets import Market
from gateway.simulator.payloads import TimeUnit

__all__ = [
    "ConnectionStats",
    "ExchangeSimulator",
    "FaultKind",
    "Market",
    "SimulatorConfig",
    "TimeUnit",
    "serve",
]
