"""The simulator's configuration: one frozen, validated model.

Defaults mirror the chosen market (docs/binance.md §2): spot pings every 20 s with the pong due within
60 s and allows 5 incoming messages per second; futures ping every 3 min, wait 10 min for the
pong and allow 10 messages per second. Any of those given explicitly wins (``None`` disables
it). Every connection is cut after 24 h. Tests shrink the timings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.simulator.engine import DEFAULT_MAX_TRADES_PER_FILL
from gateway.simulator.markets import CONNECTION_ATTEMPTS_PER_5_MIN, Market, profile

FAMILIAR_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT")
DEFAULT_SYMBOLS = FAMILIAR_SYMBOLS[:3]


def simulated_symbols(count: int) -> tuple[str, ...]:
    """``count`` symbols: familiar names first, then made-up ones (``SYM8USDT``, ``SYM9USDT``...).

    The same list as ``gateway.commands.demo.demo_symbols``, so ``gateway simulate --symbols N`` serves
    exactly what the demo and the benchmark subscribe to.
    """
    extra = tuple(f"SYM{i}USDT" for i in range(len(FAMILIAR_SYMBOLS) + 1, count + 1))
    return (FAMILIAR_SYMBOLS + extra)[:count]


def coinm_symbols(symbols: tuple[str, ...]) -> tuple[str, ...]:
    """COIN-M perpetuals for spot-style names: ``BTCUSDT`` -> ``BTCUSD_PERP``."""
    return tuple(f"{symbol.removesuffix('USDT').removesuffix('USD')}USD_PERP" for symbol in symbols)


def market_symbols(market: Market, count: int) -> tuple[str, ...]:
    """``count`` symbols named the way ``market`` names them."""
    symbols = simulated_symbols(count)
    return coinm_symbols(symbols) if market is Market.COINM else symbols


class SimulatorConfig(BaseModel):
    """Everything an :class:`~gateway.simulator.exchange.ExchangeSimulator` needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    market: Market = Market.SPOT
    """Which Binance market this simulator is; run one simulator per market."""
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    """Uppercase symbols (COIN-M: ``BTCUSD_PERP``); stream names use them lowercased."""
    seed: int = 0
    """The same seed (and clock) gives the same trades."""
    futures_merger: bool = True
    """Serve futures payloads as Binance does since the 2026-06-30 USD-M/COIN-M integration
    (``st``, more ``ps``, USD-M ``ap``); ``False`` = as documented before it."""
    other_market_symbols: tuple[str, ...] = ()
    """Futures: the other futures market's contracts (e.g. ``BTCUSD_PERP`` on USD-M), which the
    merged market-wide streams (``!bookTicker``, ``!contractInfo``, ...) carry beside this
    market's, as Binance's do since the integration. They have no per-symbol streams here."""

    trades_per_second_per_symbol: float | None = Field(default=10.0, ge=0)
    """Trade rate per symbol; ``None`` or 0 = as fast as the subscribers read (and, without a
    ``max_trades_per_symbol``, only while someone subscribes)."""
    max_trades_per_symbol: int | None = Field(default=None, ge=0)
    """Stop (go idle) after this many trades per symbol; ``None`` = never."""
    liquidation_probability: float = Field(default=0.2, ge=0, le=1)
    """Chance that a futures symbol had a liquidation in a given second (``forceOrder`` pushes
    at most one a second); tests that check every liquidation's window raise it."""
    start_paused: bool = False
    """Start without trading, until ``resume()`` or ``run_for()``."""
    max_trades_per_fill: int = Field(default=DEFAULT_MAX_TRADES_PER_FILL, ge=1)
    """An aggregate trade covers 1..this many trades."""
    history_max_per_symbol: int = Field(default=100_000, ge=1)
    """Events of each kind kept per symbol for tests and REST; older ones are dropped."""

    host: str = "127.0.0.1"
    ws_port: int = Field(default=0, ge=0, le=65_535)
    """Port of the WebSocket server; 0 = pick a free one."""
    rest_port: int = Field(default=0, ge=0, le=65_535)
    """Port of the REST server; 0 = pick a free one."""

    ping_interval_s: float | None = Field(default=20.0, gt=0)
    """Spot pings every 20 s, futures every 3 min (the market's default when not given);
    ``None`` disables pings."""
    ping_timeout_s: float | None = Field(default=60.0, gt=0)
    """A client that has not answered a ping within this time is disconnected (spot 60 s,
    futures 10 min)."""
    connection_lifetime_s: float | None = Field(default=86_400.0, gt=0)
    """Close every connection after this long (Binance: 24 h); ``None`` = never."""
    update_interval_scale: float = Field(default=1.0, gt=0)
    """Multiplies every periodic stream's period (depth 100 ms, klines 2 s...): 0.01 runs them
    100 times faster for tests. Event times still come from the clock."""
    max_connection_attempts: int | None = Field(default=CONNECTION_ATTEMPTS_PER_5_MIN, ge=1)
    """Connection attempts per IP per ``connection_attempt_window_s``; HTTP 429 beyond."""
    connection_attempt_window_s: float = Field(default=300.0, gt=0)
    rest_weight_limit: int | None = Field(default=None, ge=1)
    """Request weight per IP per window (default: the market's, spot 6000, futures 2400)."""
    rest_weight_window_s: float = Field(default=60.0, gt=0)
    rest_ban_s: float = Field(default=120.0, gt=0)
    """First IP ban after ignoring a 429 (Binance: 2 min, doubling up to 3 days)."""
    api_keys: dict[str, str] = Field(default_factory=lambda: {"simulator-key": "simulator-secret"})
    """API key -> HMAC secret, or the PEM public key of an RSA / Ed25519 API key: checks listen
    keys, signed WebSocket API requests and signed REST reads."""
    listen_key_validity_s: float = Field(default=3_600.0, gt=0)
    """A futures listen key expires this long after creation or its last keepalive."""
    fault_rate: float = Field(default=0.0, ge=0)
    """Random faults per second (soak tests); 0 = none. See :mod:`gateway.simulator.faults`."""
    fault_kinds: tuple[str, ...] = ()
    """Which faults the random mix draws from; empty = every kind."""
    send_buffer_bytes: int | None = Field(default=1_048_576, ge=1)
    """Unsent bytes a connection may hold in the simulator (beyond the kernel's socket buffers)
    before it is cut, as Binance cuts a client that does not read; the market never waits for
    it. ``None`` = no limit (then only the ping deadline ends a connection that stopped reading).
    Binance's own size is undocumented."""
    close_timeout_s: float = Field(default=2.0, gt=0)
    """How long a closing handshake may take before the socket is dropped."""

    max_incoming_messages_per_s: int | None = Field(default=5, ge=1)
    """Close a connection that sends more messages than this in a second (spot 5, futures
    10); ``None`` = no limit."""
    max_request_target_bytes: int = Field(default=8_000, ge=16, le=8_179)
    """Longest accepted URL path+query (HTTP 414 beyond). Binance's limit is undocumented; a
    third-party measurement found about 8004 characters for the whole URL. At most 8179:
    websockets refuses request lines over 8192 bytes before the simulator sees them."""
    max_message_bytes: int = Field(default=4_096, ge=64)
    """Longest accepted control message (close 1009 beyond). Undocumented; a third-party report
    saw the server ignore messages over 4096 bytes."""
    reject_unknown_streams: bool = True
    """Close (1008) a connection whose URL names an unknown stream; ``False`` accepts it and
    sends nothing for that name, as users report Binance does for unknown symbols."""
    wrap_control_errors: bool = False
    """Send control errors as ``{"error": {...}, "id": ...}`` (seen live) instead of the flat
    form of the docs' table."""

    @model_validator(mode="before")
    @classmethod
    def _market_defaults(cls, data: Any) -> Any:
        """Fill the per-market limits the caller did not set (explicit values, even None, win)."""
        if not isinstance(data, dict):
            return data
        market = Market(data.get("market", Market.SPOT))
        defaults = profile(market)
        filled = dict(data)
        filled.setdefault("ping_interval_s", defaults.ping_interval_s)
        filled.setdefault("ping_timeout_s", defaults.ping_timeout_s)
        filled.setdefault("max_incoming_messages_per_s", defaults.max_incoming_messages_per_s)
        if market is Market.COINM and "symbols" not in data:
            filled["symbols"] = coinm_symbols(DEFAULT_SYMBOLS)
        return filled

    @property
    def weight_limit(self) -> int:
        """The REST weight budget per window."""
        return self.rest_weight_limit or profile(self.market).request_weight_per_minute

    @model_validator(mode="after")
    def _other_market_symbols_are_futures_symbols(self) -> SimulatorConfig:
        others = self.other_market_symbols
        if others and self.market is Market.SPOT:
            raise ValueError("other_market_symbols: only futures streams carry both markets")
        if set(others) & set(self.symbols) or len(set(others)) != len(others):
            raise ValueError("other_market_symbols must be unique and not this market's symbols")
        for symbol in others:
            if not (symbol.replace("_", "").isalnum() and symbol.isupper()):
                raise ValueError(f"other_market_symbols: {symbol!r} is not an uppercase symbol")
        return self

    @field_validator("symbols")
    @classmethod
    def _symbols_are_uppercase_and_unique(cls, symbols: tuple[str, ...]) -> tuple[str, ...]:
        if not symbols:
            raise ValueError("at least one symbol is required")
        for symbol in symbols:
            if not (symbol.replace("_", "").isalnum() and symbol.isupper() and len(symbol) > 3):
                raise ValueError(f"symbol {symbol!r} must be uppercase letters and digits")
        if len(set(symbols)) != len(symbols):
            raise ValueError("symbols must be unique")
        return symbols
