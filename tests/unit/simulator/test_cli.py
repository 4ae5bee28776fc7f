"""Command-line options of ``python -m gateway.simulator``."""

import pytest

from gateway.simulator.cli import parse_args, parse_fault_kinds
from gateway.simulator.markets import Market


def test_market_symbols_and_fault_mix() -> None:
    config, uvloop = parse_args(
        ["--market", "coinm", "--symbols", "2", "--fault-rate", "0.5", "--faults", "drop, gap"]
    )
    assert config.market is Market.COINM and config.symbols == ("BTCUSD_PERP", "ETHUSD_PERP")
    assert (config.fault_rate, config.fault_kinds) == (0.5, ("drop", "gap"))
    assert config.ping_interval_s == 180 and not uvloop


def test_unknown_fault_kinds_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_fault_kinds("drop,teleport")
