"""The simulator's configuration: one frozen, validated model.

Defaults mirror Binance spot (FACTS.md §2): pings every 20 s, pong due within 60 s, 1024 streams
per connection, 5 incoming messages per second. Tests shrink the timings.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.simulator.engine import DEFAULT_MAX_TRADES_PER_FILL
from gateway.simulator.limits import MAX_INCOMING_MESSAGES_PER_S

FAMILIAR_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT")
DEFAULT_SYMBOLS = FAMILIAR_SYMBOLS[:3]


def simulated_symbols(count: int) -> tuple[str, ...]:
    """``count`` symbols: familiar names first, then made-up ones (``SYM8USDT``, ``SYM9USDT``...).

    The same list as ``gateway.demo.demo_symbols``, so ``gateway simulate --symbols N`` serves
    exactly what the demo and the benchmark subscribe to.
    """
    extra = tuple(f"SYM{i}USDT" for i in range(len(FAMILIAR_SYMBOLS) + 1, count + 1))
    return (FAMILIAR_SYMBOLS + extra)[:count]


class SimulatorConfig(BaseModel):
    """Everything an :class:`~gateway.simulator.exchange.ExchangeSimulator` needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    """Uppercase spot symbols; stream names use them lowercased."""
    seed: int = 0
    """The same seed (and clock) gives the same trades."""

    trades_per_second_per_symbol: float | None = Field(default=10.0, ge=0)
    """Trade rate per symbol; ``None`` or 0 = as fast as the subscribers read (and, without a
    ``max_trades_per_symbol``, only while someone subscribes)."""
    max_trades_per_symbol: int | None = Field(default=None, ge=0)
    """Stop (go idle) after this many trades per symbol; ``None`` = never."""
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
    """Spot pings every 20 s; ``None`` disables pings."""
    ping_timeout_s: float | None = Field(default=60.0, gt=0)
    """A client that has not answered a ping within this time is disconnected."""
    connection_lifetime_s: float | None = Field(default=None, gt=0)
    """Close every connection after this long (Binance: 24 h); ``None`` = never."""
    close_timeout_s: float = Field(default=2.0, gt=0)
    """How long a closing handshake may take before the socket is dropped."""

    max_incoming_messages_per_s: int | None = Field(default=MAX_INCOMING_MESSAGES_PER_S, ge=1)
    """Close a connection that sends more messages than this in a second; ``None`` = no limit."""
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

    @field_validator("symbols")
    @classmethod
    def _symbols_are_uppercase_and_unique(cls, symbols: tuple[str, ...]) -> tuple[str, ...]:
        if not symbols:
            raise ValueError("at least one symbol is required")
        for symbol in symbols:
            if not (symbol.isalnum() and symbol.isupper() and len(symbol) > 3):
                raise ValueError(f"symbol {symbol!r} must be uppercase letters and digits")
        if len(set(symbols)) != len(symbols):
            raise ValueError("symbols must be unique")
        return symbols
