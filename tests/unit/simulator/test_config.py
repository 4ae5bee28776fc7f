"""Configuration validation."""

import pytest
from pydantic import ValidationError

from gateway.simulator.config import FAMILIAR_SYMBOLS, SimulatorConfig, simulated_symbols


@pytest.mark.parametrize("symbols", [(), ("btcusdt",), ("BTC-USDT",), ("BTCUSDT", "BTCUSDT")])
def test_symbols_must_be_uppercase_unique_and_present(symbols):
    with pytest.raises(ValidationError):
        SimulatorConfig(symbols=symbols)


def test_unknown_settings_are_refused():
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate({"symbol": "BTCUSDT"})


def test_defaults_follow_binance_spot():
    config = SimulatorConfig()
    assert (config.ping_interval_s, config.ping_timeout_s) == (20.0, 60.0)
    assert config.max_incoming_messages_per_s == 5


def test_simulated_symbols_start_with_familiar_names():
    assert simulated_symbols(2) == ("BTCUSDT", "ETHUSDT")
    names = simulated_symbols(9)
    assert names[: len(FAMILIAR_SYMBOLS)] == FAMILIAR_SYMBOLS
    assert names[len(FAMILIAR_SYMBOLS) :] == ("SYM8USDT", "SYM9USDT")
    SimulatorConfig(symbols=simulated_symbols(600))  # all valid
