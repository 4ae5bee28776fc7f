"""The three markets the simulator can be, and what differs between them (docs/binance.md §1, §2, §4, §7).

A :class:`MarketProfile` holds every per-market constant in one place, so the servers and payload
builders ask the profile instead of branching on the market everywhere. The simulator keeps its
own copy of these facts rather than importing the gateway's (``gateway.binance.markets``): it is
the oracle the gateway is measured against.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class Market(enum.Enum):
    """Spot, USDⓈ-M futures or COIN-M futures."""

    SPOT = "spot"
    USDM = "usdm"
    COINM = "coinm"

    @property
    def is_futures(self) -> bool:
        """USDⓈ-M and COIN-M share the futures rules (``pu`` chains, 10 msg/s, 3 min pings)."""
        return self is not Market.SPOT


class Route(enum.Enum):
    """USDⓈ-M's routed endpoints (docs/binance.md §1.2); ``NONE`` is a legacy unrouted connection."""

    NONE = ""
    PUBLIC = "/public"
    MARKET = "/market"
    PRIVATE = "/private"


@dataclass(frozen=True, slots=True)
class MarketProfile:
    """Everything that differs between markets."""

    market: Market
    rest_prefix: str
    ping_interval_s: float
    ping_timeout_s: float
    max_incoming_messages_per_s: int
    request_weight_per_minute: int
    routed: bool
    """USDⓈ-M splits streams over ``/public``, ``/market`` and ``/private`` (since 2026-04-23)."""
    diff_depth_speeds_ms: Mapping[str, int]
    """Suffix after ``@depth`` (``""`` = none) -> update period."""
    kline_period_ms: int
    mini_ticker_period_ms: int
    ticker_period_ms: int
    control_id_signed: bool
    """Spot accepts signed int64 / string / null ids; futures documents an unsigned int."""
    weights: Mapping[str, int] = field(default_factory=dict)


_SPOT_WEIGHTS = MappingProxyType(
    {
        # docs/binance.md §7. ping/time are not listed there; Binance documents weight 1 for both.
        "ping": 1,
        "time": 1,
        "exchangeInfo": 20,
        "aggTrades": 4,
        "trades": 25,
        "historicalTrades": 25,
        "klines": 2,
        "depth": 5,  # by limit, see depth_weight()
        "24hr": 80,  # ticker/24hr of every symbol; one symbol: 2
    }
)
_FUTURES_WEIGHTS = MappingProxyType(
    {
        "ping": 1,
        "time": 1,
        "exchangeInfo": 1,
        "aggTrades": 20,
        "trades": 5,
        "historicalTrades": 200,  # 20 until SDK 17.0.0 (2026-08-07), docs/binance-streams.md
        "klines": 5,  # by limit, see klines_weight()
        "depth": 10,  # by limit, see depth_weight()
        "listenKey": 1,
        "24hr": 40,  # ticker/24hr of every symbol; one symbol: 1
    }
)

PROFILES: Mapping[Market, MarketProfile] = MappingProxyType(
    {
        Market.SPOT: MarketProfile(
            market=Market.SPOT,
            rest_prefix="/api/v3",
            ping_interval_s=20.0,
            ping_timeout_s=60.0,
            max_incoming_messages_per_s=5,
            request_weight_per_minute=6_000,
            routed=False,
            diff_depth_speeds_ms=MappingProxyType({"": 1_000, "@100ms": 100}),
            kline_period_ms=2_000,
            mini_ticker_period_ms=1_000,
            ticker_period_ms=1_000,
            control_id_signed=True,
            weights=_SPOT_WEIGHTS,
        ),
        Market.USDM: MarketProfile(
            market=Market.USDM,
            rest_prefix="/fapi/v1",
            ping_interval_s=180.0,
            ping_timeout_s=600.0,
            max_incoming_messages_per_s=10,
            request_weight_per_minute=2_400,
            routed=True,
            diff_depth_speeds_ms=MappingProxyType({"": 250, "@500ms": 500, "@100ms": 100}),
            kline_period_ms=250,
            mini_ticker_period_ms=2_000,
            ticker_period_ms=2_000,
            control_id_signed=False,
            weights=_FUTURES_WEIGHTS,
        ),
        Market.COINM: MarketProfile(
            market=Market.COINM,
            rest_prefix="/dapi/v1",
            ping_interval_s=180.0,
            ping_timeout_s=600.0,
            max_incoming_messages_per_s=10,
            # One budget shared with USDⓈ-M since the 2026-06-30 integration (docs/binance.md §1.3).
            request_weight_per_minute=2_400,
            routed=False,
            diff_depth_speeds_ms=MappingProxyType({"": 250, "@500ms": 500, "@100ms": 100}),
            kline_period_ms=250,
            mini_ticker_period_ms=500,
            ticker_period_ms=500,
            control_id_signed=False,
            weights=_FUTURES_WEIGHTS,
        ),
    }
)

MAX_STREAMS_PER_CONNECTION = 1024
"""Every market's documented cap (docs/binance.md §2; older futures pages said 200, see docs/binance.md §9)."""
CONNECTION_ATTEMPTS_PER_5_MIN = 300
"""Spot's per-IP connection-attempt limit (docs/binance.md §2); applied to futures too for lack of a figure."""


def profile(market: Market) -> MarketProfile:
    """The profile of ``market``."""
    return PROFILES[market]


def depth_weight(market: Market, limit: int) -> int:
    """``GET depth`` weight by ``limit`` (docs/binance.md §5.1 spot, §5.2 futures)."""
    if market is Market.SPOT:
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1_000 else 250
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def klines_weight(market: Market, limit: int) -> int:
    """``GET klines`` weight: spot 2; futures 1/2/5/10 by limit tier (docs/binance.md §7)."""
    if market is Market.SPOT:
        return 2
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1_000 else 10
