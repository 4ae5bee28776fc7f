"""A Binance spot exchange double: WebSocket streams and REST on 127.0.0.1.

The ground truth for tests, demos and benchmarks. It is an independent oracle: it builds
Binance's payloads itself and never imports the gateway's parser or record code
(``gateway.binance``, ``gateway.records``, ``gateway.adapters``), so one misreading of the format
cannot hide in both.

Modules, from pure to I/O::

    engine      seeded market: prices, trades, aggregate trades (integers, no clock)
    payloads    Binance JSON payloads and frames built from engine records
    streams     stream names, connection URLs, the catalogue of served streams
    control     answers to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_ / GET_PROPERTY
    limits      message-rate and request-weight counters
    history     bounded record of everything generated, queryable as payloads
    hub         stream name -> subscribers; encode once, write to all, drain once per burst
    trading     the loop that paces the engine and publishes its fills
    ws_server   /ws and /stream endpoints (websockets)
    rest        /api/v3 endpoints (aiohttp)
    exchange    ExchangeSimulator facade and serve()
    cli         ``gateway simulate`` / ``python -m gateway.simulator``
    bench       events/s one reader receives (``python -m gateway.simulator.bench``)
"""

from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator, serve
from gateway.simulator.hub import ConnectionStats
from gateway.simulator.payloads import TimeUnit

__all__ = ["ConnectionStats", "ExchangeSimulator", "SimulatorConfig", "TimeUnit", "serve"]
