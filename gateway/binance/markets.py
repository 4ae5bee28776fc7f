"""Binance markets, their endpoints and the limits Binance documents for them.

Numbers come from ``docs/binance.md`` (§1, §2, §7); tests pin them so docs and
code cannot drift apart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Market(enum.Enum):
    """A Binance market: the value is the name used in topics and records."""

    SPOT = "spot"
    USDM = "usdm"
    COINM = "coinm"


@dataclass(frozen=True, slots=True)
class MarketLimits:
    """What one WebSocket connection and one IP may do on a market."""

    max_streams_per_connection: int
    max_incoming_messages_per_s: int
    connection_lifetime_s: float
    server_ping_interval_s: float
    pong_deadline_s: float


@dataclass(frozen=True, slots=True)
class MarketEndpoints:
    """Production base URLs of a market."""

    stream_url: str
    rest_url: str


SPOT_LIMITS = MarketLimits(
    max_streams_per_connection=1024,
    max_incoming_messages_per_s=5,
    connection_lifetime_s=24 * 3600,
    server_ping_interval_s=20,
    pong_deadline_s=60,
)
FUTURES_LIMITS = MarketLimits(
    max_streams_per_connection=1024,
    max_incoming_messages_per_s=10,
    connection_lifetime_s=24 * 3600,
    server_ping_interval_s=180,
    pong_deadline_s=600,
)

LIMITS: dict[Market, MarketLimits] = {
    Market.SPOT: SPOT_LIMITS,
    Market.USDM: FUTURES_LIMITS,
    Market.COINM: FUTURES_LIMITS,
}

ENDPOINTS: dict[Market, MarketEndpoints] = {
    Market.SPOT: MarketEndpoints("wss://stream.binance.com:9443", "https://api.binance.com"),
    Market.USDM: MarketEndpoints("wss://fstream.binance.com", "https://fapi.binance.com"),
    Market.COINM: MarketEndpoints("wss://dstream.binance.com", "https://dapi.binance.com"),
}

# Spot answers GET /api/v3/ping with {}; a cheap reachability probe (weight 1).
PING_PATHS: dict[Market, str] = {
    Market.SPOT: "/api/v3/ping",
    Market.USDM: "/fapi/v1/ping",
    Market.COINM: "/dapi/v1/ping",
}
