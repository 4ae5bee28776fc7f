"""Configuration: a YAML file plus ``GATEWAY_…`` environment overrides, validated at start-up.

Precedence, highest first: keyword arguments, environment (``GATEWAY_KAFKA__BOOTSTRAP_SERVERS``),
the YAML file given with ``--config``, then the defaults below. Unknown keys are errors, so a typo
never silently falls back to a default. Build the settings once (``load_settings``) and pass them
down; nothing else reads the environment.
"""

from __future__ import annotations

import contextvars
import socket
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from gateway.accounts.settings import AccountSettings, check_unique_aliases
from gateway.adapters.kafka_security import KafkaSecuritySettings
from gateway.binance.markets import ENDPOINTS, Market
from gateway.binance.streams import TimeUnit, validate_channel, validate_market_wide
from gateway.errors import ConfigError

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")

_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "gateway_config_file", default=None
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SymbolSelection(_Section):
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


class MarketSettings(_Section):
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
    channels: tuple[str, ...] = ("trade", "aggTrade")
    """Per-symbol channels: trade, aggTrade, bookTicker, depth@100ms, kline_1m, ..."""
    market_wide: tuple[str, ...] = ()
    """Whole-market streams: !miniTicker@arr, !markPrice@arr@1s, !contractInfo, ..."""
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
        True, description="Fill holes in trade ids from REST; declare what REST no longer has"
    )

    @field_validator("channels")
    @classmethod
    def _channels_exist(cls, channels: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(validate_channel(channel) for channel in channels)

    @field_validator("market_wide")
    @classmethod
    def _market_wide_streams_exist(cls, streams: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(validate_market_wide(stream) for stream in streams)

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


class BinanceSettings(_Section):
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

    def stream_url(self, market: Market) -> str:
        return self.markets[market].stream_url or ENDPOINTS[market].stream_url

    def rest_url(self, market: Market) -> str:
        return self.markets[market].rest_url or ENDPOINTS[market].rest_url


class KafkaSettings(_Section):
    """The Kafka side: where, how records are batched, and the topics."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "binance-gateway"
    topic_prefix: str = Field("binance", pattern=r"^[A-Za-z0-9._-]+$")
    compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = "lz4"
    linger_ms: int = Field(5, ge=0)
    max_batch_bytes: int = Field(256 * 1024, ge=1024)
    request_timeout_ms: int = Field(
        120_000,
        ge=1000,
        description="aiokafka also expires unsent batches after this: the longest Kafka outage "
        "survived without losing a record (longer ones stop the gateway loudly)",
    )
    max_buffered_records: int = Field(100_000, ge=1)
    create_topics: bool = True
    partitions: int = Field(6, ge=1)
    replication_factor: int = Field(1, ge=1)
    retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1)
    compacted_kinds: tuple[str, ...] = Field(
        ("depth_snapshot", "book_snapshot"),
        description="Event kinds whose topics hold latest state per symbol",
    )
    security: KafkaSecuritySettings = Field(default_factory=KafkaSecuritySettings)


class CoordinationSettings(_Section):
    """How workers share the shards: Kafka's consumer-group protocol on a control topic."""

    enabled: bool = Field(
        True, description="Share shards with the other workers of the group; off = stream all"
    )
    group_id: str | None = Field(
        None, min_length=1, description="None = <topic_prefix>.workers: one group per deployment"
    )
    control_topic: str | None = Field(
        None, description="None = <topic_prefix>.control (one partition per shard)"
    )
    session_timeout_ms: int = Field(
        10_000, ge=1000, description="A worker silent this long loses its shards to the others"
    )
    heartbeat_interval_ms: int = Field(3_000, ge=100)
    shard_failures_before_failing: int = Field(
        5, ge=1, description="Restarts within shard_failure_window_s before a shard is reported"
    )
    shard_failure_window_s: float = Field(300.0, gt=0)
    failing_shard_retry_s: float = Field(
        60.0, gt=0, description="How often a failing shard is retried (never a tight loop)"
    )
    handover_warning_s: float = Field(
        30.0, gt=0, description="Log when a shard waits this long for its previous owner"
    )


class RegistrySettings(_Section):
    """Confluent-compatible schema registry; no URL = Avro single-object encoding."""

    url: str | None = None
    timeout_s: float = Field(10.0, gt=0)


class StatusSettings(_Section):
    """The HTTP endpoint for Prometheus and the Kubernetes probes."""

    enabled: bool = True
    host: str = "0.0.0.0"  # a pod's probes and scrapes come from outside it
    port: int = Field(8000, ge=0, le=65535, description="0 = any free port")


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(True, alias="json")


class GatewaySettings(BaseSettings):
    """Everything the gateway needs, validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    gateway_id: str = Field(default_factory=socket.gethostname, min_length=1)
    binance: BinanceSettings = Field(default_factory=BinanceSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    coordination: CoordinationSettings = Field(default_factory=CoordinationSettings)
    status: StatusSettings = Field(default_factory=StatusSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    accounts: tuple[AccountSettings, ...] = ()
    """Private account streams (docs/accounts.md); credentials are read from env or files."""

    @field_validator("accounts")
    @classmethod
    def _unique_account_aliases(
        cls, accounts: tuple[AccountSettings, ...]
    ) -> tuple[AccountSettings, ...]:
        return check_unique_aliases(accounts)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get()
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        sources.append(file_secret_settings)
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: object) -> GatewaySettings:
    """Build the settings once; any problem becomes one ConfigError naming the bad field."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file not found: {config_file}")
    token = _config_file.set(config_file)
    try:
        return GatewaySettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_file)) from None
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())  # PyYAML's message spans lines; keep it to one
        raise ConfigError(
            f"invalid configuration in {config_file}: not valid YAML: {reason}"
        ) from None
    finally:
        _config_file.reset(token)


def _describe(exc: ValidationError, config_file: Path | None) -> str:
    where = f" (file {config_file}, or GATEWAY_… environment)" if config_file else ""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        f" (got {err.get('input')!r})"
        for err in exc.errors()
    )
    return f"invalid configuration{where}: {problems}"
