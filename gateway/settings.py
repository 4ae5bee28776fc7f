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
from typing import Literal

import yaml
from pydantic import (
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
from gateway.adapters.registry_settings import RegistrySettings
from gateway.binance.markets import Market
from gateway.binance.messages import RECORD_CLASSES
from gateway.binance.settings import (  # re-exported: the whole configuration is read here
    DEFAULT_SYMBOLS as DEFAULT_SYMBOLS,
    BinanceSettings as BinanceSettings,
    MarketSettings as MarketSettings,
    Section as _Section,
    SymbolSelection as SymbolSelection,
)
from gateway.errors import ConfigError
from gateway.records.topics import DEAD_LETTER_KIND, STREAM_STATUS_KIND, TRADE_GAP_KIND

_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "gateway_config_file", default=None
)


class TopicOverride(_Section):
    """Settings of one event kind's topics that differ from the defaults (``kafka.topic_overrides``).

    Keyed by kind: a public kind (``trade``, ``depth_update``), a gateway record
    (``dead_letter``, ``trade_gap``), ``account`` for the account topics or ``control``.
    """

    partitions: int | None = Field(None, ge=1)
    retention_ms: int | None = Field(None, ge=-1)
    config: dict[str, str] = Field(
        default_factory=dict, description="Any other Kafka topic config, e.g. segment.bytes"
    )


def _overridable_kinds() -> set[str]:
    """Every kind ``kafka.topic_overrides`` may name: the public kinds of every market, the
    gateway's own records, ``account`` (the account topics) and ``control``."""
    public = {c.KIND for market in Market for c in RECORD_CLASSES[market.value]}
    return public | {DEAD_LETTER_KIND, TRADE_GAP_KIND, STREAM_STATUS_KIND, "account", "control"}


MIN_RECORD_BYTES = 272 * 1024
"""Smallest ``kafka.max_record_bytes``: a dead letter (256 KiB of frame, its error) fits under it."""


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
    max_buffered_records: int = Field(20_000, ge=1)
    max_record_bytes: int = Field(
        1_000_000,
        # A dead letter keeps up to 256 KiB of its frame (records/builder.py): it must always fit.
        ge=MIN_RECORD_BYTES,
        description="Largest record sent; a larger one is dead-lettered instead. Keep it under "
        "the topics' max.message.bytes (Kafka's default 1048588) and the producer's 1 MiB",
    )
    internal_topic_prefix: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="None = _<topic_prefix>: the control topic and the workers' group, apart "
        "from the data so that a consumer of ^<topic_prefix>\\..* sees only Avro records",
    )
    create_topics: bool = Field(
        True, description="False when the platform creates them (`gateway topics --strimzi`)"
    )
    partitions: int = Field(6, ge=1)
    replication_factor: int = Field(1, ge=1)
    min_insync_replicas: int | None = Field(
        None, ge=1, description="None = the broker's default; at most replication_factor"
    )
    retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1)
    compacted_kinds: tuple[str, ...] = Field(
        ("depth_snapshot", "book_snapshot"),
        description="Event kinds whose topics hold latest state per symbol",
    )
    topic_overrides: dict[str, TopicOverride] = Field(
        default_factory=dict, description="Per event kind: partitions, retention_ms, config"
    )
    security: KafkaSecuritySettings = Field(default_factory=KafkaSecuritySettings)

    @field_validator("topic_overrides")
    @classmethod
    def _overrides_name_kinds(cls, overrides: dict[str, TopicOverride]) -> dict[str, TopicOverride]:
        # A misspelt kind would be ignored silently, like any unknown key: refuse it instead.
        unknown = sorted(set(overrides) - _overridable_kinds())
        if unknown:
            raise ValueError(
                f"no topics of kind {', '.join(unknown)}; kinds: "
                f"{', '.join(sorted(_overridable_kinds()))}"
            )
        return overrides

    @model_validator(mode="after")
    def _min_insync_within_replicas(self) -> KafkaSettings:
        # A topic whose min.insync.replicas exceeds its replicas refuses every acks=all write.
        if self.min_insync_replicas is not None and (
            self.min_insync_replicas > self.replication_factor
        ):
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) must not exceed "
                f"replication_factor ({self.replication_factor})"
            )
        internal = self.internal_prefix
        if internal == self.topic_prefix or internal.startswith(f"{self.topic_prefix}."):
            raise ValueError(
                f"internal_topic_prefix {internal!r} lies inside the data prefix "
                f"{self.topic_prefix!r}: consumers of the data would read the control topic"
            )
        return self

    @property
    def internal_prefix(self) -> str:
        """Where the gateway's own coordination lives: ``_binance`` by default."""
        return self.internal_topic_prefix or f"_{self.topic_prefix}"


class CoordinationSettings(_Section):
    """How workers share the shards: Kafka's consumer-group protocol on a control topic."""

    enabled: bool = Field(
        True, description="Share shards with the other workers of the group; off = stream all"
    )
    group_id: str | None = Field(
        None,
        min_length=1,
        description="None = <internal prefix>.workers (_binance.workers): one group per deployment",
    )
    control_topic: str | None = Field(
        None,
        description="None = <internal prefix>.control (_binance.control), one partition per shard",
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


class StatusSettings(_Section):
    """The HTTP endpoint for Prometheus and the Kubernetes probes."""

    enabled: bool = True
    host: str = "0.0.0.0"  # a pod's probes and scrapes come from outside it
    port: int = Field(8000, ge=0, le=65535, description="0 = any free port")


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(True, alias="json")


class RuntimeSettings(_Section):
    """How ``gateway run`` runs Python itself."""

    uvloop: bool = Field(
        True,
        description="Run on uvloop's event loop (measured: about 4% less CPU per event, 10% "
        "more events/s, 10 MiB more memory); false: asyncio's own loop",
    )


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
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
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
