"""Configuration: YAML + environment, validated once, errors that name the field."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.kafka import topic_config
from gateway.binance.markets import Market
from gateway.binance.streams import TimeUnit
from gateway.errors import ConfigError
from gateway.settings import DEFAULT_SYMBOLS, KafkaSettings, load_settings


def test_defaults_stream_a_handful_of_spot_symbols_to_a_local_kafka() -> None:
    settings = load_settings()
    spot = settings.binance.markets[Market.SPOT]
    assert spot.symbols == DEFAULT_SYMBOLS
    assert spot.channels == ("trade", "aggTrade")
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.binance.stream_url(Market.SPOT) == "wss://stream.binance.com:9443"


def test_yaml_then_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "g.yaml"
    config.write_text(
        "binance:\n  markets:\n    spot:\n      symbols: [btcusdt]\n      time_unit: MICROSECOND\n"
        "kafka:\n  partitions: 12\n  linger_ms: 9\n"
    )
    monkeypatch.setenv("GATEWAY_KAFKA__LINGER_MS", "2")
    settings = load_settings(config)
    assert settings.binance.markets[Market.SPOT].symbols == ("BTCUSDT",)
    assert settings.binance.markets[Market.SPOT].time_unit is TimeUnit.MICROSECOND
    assert (settings.kafka.partitions, settings.kafka.linger_ms) == (12, 2)


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("kafka:\n  partitions: 0\n", "kafka.partitions"),
        ("kafka:\n  compression: brotli\n", "kafka.compression"),
        ("binance:\n  markets:\n    spot:\n      symbols: [BTC, BTC]\n", "symbols"),
        (
            "binance:\n  markets:\n    spot:\n      max_streams_per_connection: 2000\n",
            "max_streams",
        ),
        ("surprise: 1\n", "surprise"),
    ],
)
def test_invalid_values_are_one_config_error_naming_the_field(
    tmp_path: Path, yaml_text: str, field: str
) -> None:
    config = tmp_path / "g.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert field in str(info.value)
    assert "\n" not in str(info.value)


def test_only_latest_state_topics_are_compacted() -> None:
    settings = KafkaSettings()
    assert (
        topic_config(settings, "binance.spot.depth_snapshot")["cleanup.policy"] == "compact,delete"
    )
    assert "cleanup.policy" not in topic_config(settings, "binance.spot.trade")
    assert topic_config(settings, "binance.spot.trade")["retention.ms"] == str(
        settings.retention_ms
    )


def test_repeated_library_messages_are_held_back_and_counted() -> None:
    import logging

    from gateway.logs import RepeatFilter

    repeat = RepeatFilter(interval_s=60)

    def record() -> logging.LogRecord:
        return logging.LogRecord(
            "aiokafka.client", logging.ERROR, "f", 1, "Unable connect to %s", ("x",), None
        )

    assert repeat.filter(record())
    assert not any(repeat.filter(record()) for _ in range(1000))
    repeat._last.clear()
    passed = record()
    assert repeat.filter(passed)
    assert "[1000 more like this" in passed.getMessage()


def test_select_replaces_the_default_symbols_and_excludes_an_explicit_list(tmp_path: Path) -> None:
    settings = load_settings(
        binance={"markets": {"usdm": {"select": {"quote_assets": ["usdt"], "max_symbols": 50}}}}
    )
    usdm = settings.binance.markets[Market.USDM]
    assert usdm.symbols == ()
    assert usdm.select is not None
    assert (usdm.select.quote_assets, usdm.select.statuses) == (("USDT",), ("TRADING",))
    assert (usdm.shards, settings.binance.exchange_info_poll_s) == (8, 60.0)
    config = tmp_path / "g.yaml"
    config.write_text(
        "binance:\n  markets:\n    spot:\n      symbols: [BTCUSDT]\n      select: {}\n"
    )
    with pytest.raises(ConfigError, match=r"binance\.markets\.spot.*either `symbols`.*not both"):
        load_settings(config)


@pytest.mark.parametrize(
    "market",
    [{"shards": 0}, {"shards": 513}, {"select": {"max_symbols": 0}}, {"select": {"statuses": []}}],
)
def test_shard_counts_and_selections_are_bounded(market: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        load_settings(binance={"markets": {"spot": market}})


def test_the_exchange_info_poll_can_be_set_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_BINANCE__EXCHANGE_INFO_POLL_S", "15")
    monkeypatch.setenv("GATEWAY_BINANCE__MARKETS__SPOT__SHARDS", "32")
    settings = load_settings()
    assert settings.binance.exchange_info_poll_s == 15.0
    assert settings.binance.markets[Market.SPOT].shards == 32
    assert settings.binance.markets[Market.SPOT].symbols == DEFAULT_SYMBOLS


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[2] / "config").glob("*.yaml")), ids=str
)
def test_the_example_configurations_are_valid(path: Path) -> None:
    settings = load_settings(path)
    assert settings.binance.markets


def test_a_channel_the_market_does_not_serve_is_one_clear_line_at_start_up() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(binance={"markets": {"spot": {"channels": ["trade", "markPrice"]}}})
    message = str(caught.value)
    assert "\n" not in message
    assert "markets.spot: spot serves no stream channel 'markPrice'" in message
    with pytest.raises(ConfigError, match="coinm has no stream family 'rpiDepth'"):
        load_settings(binance={"markets": {"coinm": {"routes": {"rpiDepth": "/public"}}}})
    moved = load_settings(binance={"markets": {"coinm": {"routes": {"*": "/market"}}}})
    assert moved.binance.markets[Market.COINM].routes == {"*": "/market"}
