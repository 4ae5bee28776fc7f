"""Configuration validation."""

import pytest
from pydantic import ValidationError

from gateway.simulator.config import FAMILIAR_SYMBOLS, SimulatorConfig, simulated_symbols


@pytest.mark.parametrize("symbols", [(), ("btcusdt",), ("BTC-USDT",), ("BTCUSDT", "BTCUSDT")])
def test_symbols_must_be_uppercase_unique_and_present(symbols: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError):
        SimulatorConfig(symbols=symbols)


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate({"symbol": "BTCUSDT"})


def test_defaults_follow_binance_spot() -> None:
    config = SimulatorConfig()
    assert (config.ping_interval_s, config.ping_timeout_s) == (20.0, 60.0)
    assert config.max_incoming_messages_per_s == 5


def test_simulated_symbols_start_with_familiar_names() -> None:
    assert simulated_symbols(2) == ("BTCUSDT", "ETHUSDT")
    names = simulated_symbols(9)
    assert names[: len(FAMILIAR_SYMBOLS)] == FAMILIAR_SYMBOLS
    assert names[len(FAMILIAR_SYMBOLS) :] == ("SYM8USDT", "SYM9USDT")
    SimulatorConfig(symbols=simulated_symbols(600))  # all valid


def test_other_market_symbols_are_for_futures_and_distinct_from_the_markets_own() -> None:
    config = SimulatorConfig(market="usdm", other_market_symbols=("BTCUSD_PERP",))
    assert config.other_market_symbols == ("BTCUSD_PERP",) and config.futures_merger
    with pytest.raises(ValidationError, match="only futures streams"):
        SimulatorConfig(other_market_symbols=("BTCUSD_PERP",))
    with pytest.raises(ValidationError, match="not this market's symbols"):
        SimulatorConfig(market="usdm", symbols=("BTCUSDT",), other_market_symbols=("BTCUSDT",))
    with pytest.raises(ValidationError, match="uppercase"):
        SimulatorConfig(market="usdm", other_market_symbols=("btcusd_perp",))
