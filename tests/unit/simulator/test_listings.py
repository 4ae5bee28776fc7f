"""Listings in the pure market: states, what market-wide streams include, new specs' ids."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.simulator.engine import default_symbol_specs, symbol_spec
from gateway.simulator.market import DELISTED_STATUS, SimulatedMarket
from gateway.simulator.markets import Market
from gateway.simulator.payloads import TimeUnit
from gateway.simulator.streams import StreamCatalog, parse_stream_name

NOW_US = 1_700_000_000_000_000


def market(kind: Market, symbols: tuple[str, ...]) -> SimulatedMarket:
    return SimulatedMarket(kind, default_symbol_specs(symbols, 0, kind), 0, max_trades_per_fill=4)


def frames(sim: SimulatedMarket, name: str) -> list[Any]:
    key = parse_stream_name(name)
    assert key is not None
    return [make(TimeUnit.MILLISECOND) for make in sim.render(name, key, NOW_US)]


def test_a_runtime_spec_is_the_one_its_index_would_have_had() -> None:
    assert (
        symbol_spec("SOLUSDT", 2, 0) == default_symbol_specs(["A1USDT", "B2USDT", "SOLUSDT"], 0)[2]
    )


def test_delisting_removes_a_contract_from_market_wide_arrays() -> None:
    sim = market(Market.USDM, ("BTCUSDT", "ETHUSDT"))
    assert [p["s"] for p in frames(sim, "!markPrice@arr")[0]] == ["BTCUSDT", "ETHUSDT"]
    sim.delist_symbol("ETHUSDT")
    assert (sim.status["ETHUSDT"], sim.is_trading("ETHUSDT")) == (
        DELISTED_STATUS[Market.USDM],
        False,
    )
    assert [p["s"] for p in frames(sim, "!markPrice@arr")[0]] == ["BTCUSDT"]
    assert [p["s"] for p in frames(sim, "!bookTicker")] == ["BTCUSDT"]


def test_contract_info_reports_the_state() -> None:
    sim = market(Market.COINM, ("BTCUSD_PERP",))
    sim.delist_symbol("BTCUSD_PERP", "CLOSE")
    assert frames(sim, "!contractInfo")[0]["cs"] == "CLOSE"
    # COIN-M's <pair>@markPrice array of a pair whose every contract is delisted: nothing.
    assert frames(sim, "btcusd@markPrice") == []


def test_listing_a_new_symbol_seeds_its_book_and_lists_it_trading() -> None:
    sim = market(Market.SPOT, ("BTCUSDT",))
    spec = symbol_spec("SOLUSDT", 1, 0)
    sim.list_symbol(spec)
    assert sim.status == {"BTCUSDT": "TRADING", "SOLUSDT": "TRADING"}
    bid, ask = sim.book("SOLUSDT").top()
    assert bid is not None and ask is not None
    fill = sim.step("SOLUSDT", NOW_US)
    assert fill.trades[0].trade_id == spec.first_trade_id
    with pytest.raises(ValueError, match="BREAK"):
        sim.delist_symbol("SOLUSDT", "SETTLING")  # a futures state


def test_the_catalogue_learns_a_listing() -> None:
    catalog = StreamCatalog(["BTCUSDT"], Market.SPOT)
    assert not catalog.is_known("solusdt@trade")
    catalog.add_symbol("SOLUSDT")
    assert catalog.is_known("solusdt@trade") and catalog.is_known("btcusdt@trade")
