"""The Binance side of the configuration: markets, symbols, channels and connection behaviour.

Pure values (pydantic models, no environment, no I/O) so the pure core (the shard plan in
:mod:`gateway.coordination.plan`) can read them without importing the settings loader, which
brings pydantic-settings and, with it, asyncio. :mod:`gateway.settings` re-exports them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway.binance.channels import (
    DEFAULT_CHANNELS,
    Route,
    validate_channels,
    validate_routes,
)
from gateway.binance.markets import ENDPOINTS, Market
from gateway.binance.streams import TimeUnit

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")


class Section(BaseModel):
    """A frozen block of settings that refuses unknown keys (a typo never falls back)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SymbolSelection(Section):
    """Which of the symbols exchangeInfo lists to stream, instead of an explicit list.

    The plan follows listings and delistings: a new symbol that matches starts streaming, one
    that stops trading stops. Every filter left empty matches anything.
    """

    quote_assets: tuple[str, ...] = Field((), description="e.g. [USDT, FDUSD]; empty = any")
    statuses: tuple[str, ...] = Field(
        ("TRADING",), min_length=1, description="exchangeInfo statuses that count as listed"
    )
    contract_types: tuple[str, ...] = Field(
        (), description="Futures contract types, e.g. [PERPETUAL]; empty = any"
    )
    exclude: tuple[str, ...] = Field((), description="Symbols never streamed")
    max_symbols: int | None = Field(
        None,
        ge=1,
        description="Keep the first N matching symbols in symbol-name order (a stable cut: a "
        "new listing that sorts early pushes the last one out); None = all",
    )

    @field_validator("quote_assets", "statuses", "contract_types", "exclude")
    @classmethod
    def _uppercase(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(value.upper() for value in values)


class MarketSettings(Section):
    """What to stream from one market, and where that market lives."""

    symbols: tuple[str, ...] = ()
    """The explicit symbol list (DEFAULT_SYMBOLS unless ``select`` is set); empty with ``select``."""
    select: SymbolSelection | None = Field(
        None, description="Pick symbols from exchangeInfo instead of listing them in `symbols`"
    )
    shards: int = Field(
        8,
        ge=1,
        le=512,
        description="Symbol slots of this market: each symbol hashes to one, and a slot is the "
        "unit workers share; more slots = smaller shards",
    )
    channels: tuple[str, ...] = DEFAULT_CHANNELS[Market.SPOT]
    """Per-symbol (or per-pair) channels: trade, aggTrade, bookTicker, depth@100ms, kline_1m, ...;
    checked against what the market serves (docs/binance-streams.md); unset = the market's
    DEFAULT_CHANNELS."""
    market_wide: tuple[str, ...] = ()
    """Whole-market streams: !miniTicker@arr, !markPrice@arr@1s, !contractInfo, ..."""
    routes: dict[str, Route] = Field(
        default_factory=dict,
        description="Overrides of the market's route table, stream family -> route ('', "
        "'/public', '/market'; '*' = every other family), e.g. {'*': '/market'} for COIN-M",
    )
    stream_url: str | None = Field(None, description="WebSocket base URL; None = Binance's")
    rest_url: str | None = Field(None, description="REST base URL; None = Binance's")
    max_streams_per_connection: int = Field(1024, ge=1, le=1024)
    time_unit: TimeUnit = TimeUnit.MILLISECOND
    sync_books: bool = Field(
        True, description="Keep depth_update symbols' books in sync and publish book_snapshot"
    )
    book_depth_limit: Literal[100, 500, 1000] = 1000
    book_snapshot_interval_s: float | None = Field(
        60.0, gt=0, description="Publish each synced book this often; None = only on (re)sync"
    )
    backfill: bool = Field(
        True,
        description="Fill holes in trade ids and closed klines from REST; declare what REST no "
        "longer has",
    )
    api_key: SecretStr | None = Field(
        None,
        description="Futures: an API key (no secret needed) for GET historicalTrades, which fills "
        "trade holes by id; without one only the latest 500 trades can (docs/binance-streams.md)",
    )

    @field_validator("symbols")
    @classmethod
    def _symbols_are_plain(cls, symbols: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in symbols:
            if not symbol.isalnum() and not symbol.replace("_", "").isalnum():
                raise ValueError(f"not a Binance symbol: {symbol!r}")
        if len(set(symbols)) != len(symbols):
            raise ValueError("symbols must not repeat")
        return tuple(s.upper() for s in symbols)

    @model_validator(mode="before")
    @classmethod
    def _symbols_or_select(cls, data: Any) -> Any:
        """``symbols`` and ``select`` are two answers to one question: at most one is given.

        Without either, the market streams DEFAULT_SYMBOLS; the default is filled in here
        rather than on the field so that a ``select`` leaves ``symbols`` empty.
        """
        if not isinstance(data, dict):
            return data
        has_select = data.get("select") is not None
        if has_select and data.get("symbols") is not None:
            raise ValueError(
                "set either `symbols` (an explicit list) or `select` (a filter over "
                "exchangeInfo), not both"
            )
        if not has_select and data.get("symbols") is None:
            return {**data, "symbols": DEFAULT_SYMBOLS}
        return data


class BinanceSettings(Section):
    """The Binance side: markets to stream and connection behaviour."""

    markets: dict[Market, MarketSettings] = Field(
        default_factory=lambda: {Market.SPOT: MarketSettings()}
    )
    open_timeout_s: float = Field(10.0, gt=0)
    ping_interval_s: float = Field(20.0, gt=0)
    ping_timeout_s: float = Field(20.0, gt=0)
    max_frame_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    preflight_timeout_s: float = Field(5.0, gt=0)
    stale_after_s: float = Field(
        60.0,
        gt=0,
        description="No stream is judged silent sooner than this; a connection is dead once it "
        "was silent longer than its most demanding stream allows (pings alone do not count)",
    )
    liveness_tolerance: float = Field(
        10.0, gt=1, description="A fixed-cadence stream is silent after this many cadences"
    )
    activity_tolerance: float = Field(
        20.0, gt=1, description="A trade-driven stream is silent after this many mean intervals"
    )
    silent_stream_report_s: float = Field(
        120.0, gt=0, description="A stream that never delivered is reported after this long"
    )
    max_quiet_s: float = Field(
        3_600.0, gt=0, description="A trade-driven stream allowed longer than this is not judged"
    )
    max_connection_attempts: int = Field(
        300, ge=1, description="Per IP per connection_attempt_window_s (spot: 300 per 5 minutes)"
    )
    connection_attempt_window_s: float = Field(300.0, gt=0)
    rotate_after_s: float = Field(
        23 * 3600, gt=0, description="Replace each connection before Binance's 24-hour cut"
    )
    handover_timeout_s: float = Field(
        10.0, gt=0, description="Longest overlap of a connection and its successor"
    )
    exchange_info_poll_s: float = Field(
        60.0, gt=0, description="How often the plan follows listings/delistings"
    )
    backfill_give_up_s: float = Field(
        120.0,
        gt=0,
        description="A backfill failing this long declares its ids on trade_gap and releases "
        "the symbol's held live trades",
    )
    max_event_time_skew_s: float = Field(
        3600.0,
        gt=0,
        description="An event time further than this from the receive time is dead-lettered",
    )
    max_id_jump: int = Field(
        100_000,
        ge=1,
        description="A trade id further ahead is quarantined until id_jump_confirmations "
        "contiguous ids confirm it",
    )
    id_jump_confirmations: int = Field(3, ge=1)
    max_id_behind: int = Field(
        10_000,
        ge=0,
        description="A trade id further behind the last published one is dead-lettered "
        "(nearer: a duplicate, dropped and counted)",
    )
    held_back_report_s: float = Field(
        30.0,
        gt=0,
        description="A symbol's trades held back this long are reported (docs/delivery.md)",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_channels(cls, data: Any) -> Any:
        """A market without ``channels`` gets the ones it really serves (DEFAULT_CHANNELS)."""
        if not isinstance(data, dict) or not isinstance(data.get("markets"), dict):
            return data
        markets = {}
        for key, value in data["markets"].items():
            try:
                market = Market(key)
            except ValueError:
                markets[key] = value  # pydantic names the bad key
                continue
            if isinstance(value, dict) and "channels" not in value:
                value = {**value, "channels": DEFAULT_CHANNELS[market]}
            elif isinstance(value, MarketSettings) and "channels" not in value.model_fields_set:
                value = value.model_copy(update={"channels": DEFAULT_CHANNELS[market]})
            markets[key] = value
        return {**data, "markets": markets}

    @model_validator(mode="after")
    def _markets_serve_their_channels(self) -> BinanceSettings:
        """Every channel, market-wide stream and route is one its market has (docs/binance-streams.md)."""
        for market, market_settings in self.markets.items():
            where = f"markets.{market.value}"
            try:
                validate_channels(market, market_settings.channels, wide=False)
                validate_channels(market, market_settings.market_wide, wide=True)
                validate_routes(market, market_settings.routes)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        return self

    def stream_url(self, market: Market) -> str:
        return self.markets[market].stream_url or ENDPOINTS[market].stream_url

    def rest_url(self, market: Market) -> str:
        return self.markets[market].rest_url or ENDPOINTS[market].rest_url
