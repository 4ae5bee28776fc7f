"""The shard plan: a configuration-only layout, stable symbol slots, minimal moves."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, strategies as st

from gateway.binance.exchange_info import ListedSymbol
from gateway.binance.markets import Market
from gateway.coordination.plan import (
    Shard,
    StreamChange,
    build_plan,
    connections_needed,
    diff,
    shard_ids,
    slot_of,
    stream_weight,
)
from gateway.settings import BinanceSettings, MarketSettings

SYMBOL = st.from_regex(r"[A-Z][A-Z0-9]{2,9}USDT", fullmatch=True)
SYMBOL_SETS = st.sets(SYMBOL, max_size=40)


def settings(**markets: dict[str, object]) -> BinanceSettings:
    return BinanceSettings(markets={Market(m): MarketSettings(**v) for m, v in markets.items()})


def listed(
    symbol: str, status: str = "TRADING", quote: str = "USDT", ct: str | None = None
) -> ListedSymbol:
    return ListedSymbol(symbol, status, symbol.removesuffix(quote), quote, ct)


SELECT_SPOT = settings(spot={"select": {}, "shards": 4, "channels": ["trade", "depth@100ms"]})


# --- layout ---------------------------------------------------------------------------------


def test_the_layout_is_markets_in_fixed_order_then_slots_then_wide() -> None:
    config = settings(
        coinm={"shards": 1, "market_wide": ["!contractInfo"]},
        usdm={"shards": 2},
        spot={"shards": 3, "market_wide": ["!miniTicker@arr"]},
    )
    assert shard_ids(config) == (
        "spot-000", "spot-001", "spot-002", "spot-wide", "usdm-000", "usdm-001",
        "coinm-000", "coinm-wide",
    )  # fmt: skip


@given(SYMBOL_SETS, st.sampled_from(["TRADING", "BREAK"]), st.integers(1, 30))
def test_shard_ids_depend_on_configuration_only(
    symbols: set[str], status: str, shards: int
) -> None:
    config = settings(spot={"select": {}, "shards": shards}, usdm={"shards": 2})
    listings = {Market.SPOT: [listed(s, status) for s in symbols]}
    plan = build_plan(config, listings)
    assert plan.ids == shard_ids(config) == build_plan(config).ids
    assert plan.fingerprint == build_plan(config).fingerprint


def test_the_fingerprint_tells_layouts_apart() -> None:
    assert build_plan(settings(spot={"shards": 8})).fingerprint != (
        build_plan(settings(spot={"shards": 9})).fingerprint
    )
    assert build_plan(settings(spot={"shards": 8})).fingerprint != (
        build_plan(settings(spot={"shards": 8, "market_wide": ["!ticker_1h@arr"]})).fingerprint
    )


def test_empty_slots_are_shards_too() -> None:
    plan = build_plan(settings(spot={"symbols": ["BTCUSDT"], "shards": 16}))
    assert len(plan.shards) == 16
    assert sum(1 for shard in plan.shards if shard.streams) == 1
    assert slot_of("BTCUSDT", 16) == 2
    assert plan.shard("spot-002").symbols == ("BTCUSDT",)
    assert plan.shard("spot-015") == Shard("spot-015", Market.SPOT, (), (), 0.0)
    with pytest.raises(KeyError, match="spot-016"):
        plan.shard("spot-016")


# --- slots ----------------------------------------------------------------------------------


def test_slots_are_a_stable_hash_of_the_name() -> None:
    # Pinned: a change here moves every symbol of every deployment at once.
    assert (slot_of("BTCUSDT", 8), slot_of("ETHUSDT", 512)) == (2, 10)
    assert slot_of("btcusdt", 8) == slot_of("BTCUSDT", 8)
    with pytest.raises(ValueError):
        slot_of("BTCUSDT", 0)


def test_all_streams_of_a_symbol_share_its_slot() -> None:
    config = settings(spot={"symbols": ["BTCUSDT"], "channels": ["trade", "aggTrade", "depth"]})
    plan = build_plan(config)
    shard = plan.shard(f"spot-{slot_of('BTCUSDT', 8):03d}")
    assert shard.streams == ("btcusdt@aggTrade", "btcusdt@depth", "btcusdt@trade")
    assert shard.symbols == ("BTCUSDT",)


# --- properties -----------------------------------------------------------------------------


@given(SYMBOL_SETS, st.integers(1, 20))
def test_every_stream_is_in_exactly_one_shard(symbols: set[str], shards: int) -> None:
    config = settings(
        spot={"select": {}, "shards": shards, "channels": ["trade", "aggTrade"],
              "market_wide": ["!miniTicker@arr"]},
        usdm={"select": {}, "shards": shards, "channels": ["aggTrade", "depth@100ms"]},
    )  # fmt: skip
    listings = {m: [listed(s) for s in symbols] for m in (Market.SPOT, Market.USDM)}
    plan = build_plan(config, listings)
    held = [(shard.market, name) for shard in plan.shards for name in shard.streams]
    assert len(held) == len(set(held))
    expected = {(Market.SPOT, "!miniTicker@arr")}
    for symbol in symbols:
        expected |= {(Market.SPOT, f"{symbol.lower()}@{c}") for c in ("trade", "aggTrade")}
        expected |= {(Market.USDM, f"{symbol.lower()}@{c}") for c in ("aggTrade", "depth@100ms")}
    assert set(held) == expected


@given(SYMBOL_SETS, st.randoms(use_true_random=False))
def test_the_plan_is_deterministic_and_ignores_input_order(
    symbols: set[str], rng: random.Random
) -> None:
    entries = [listed(s) for s in symbols]
    shuffled = list(entries)
    rng.shuffle(shuffled)
    first = build_plan(SELECT_SPOT, {Market.SPOT: entries})
    assert first == build_plan(SELECT_SPOT, {Market.SPOT: shuffled})
    assert all(list(s.streams) == sorted(s.streams) for s in first.shards)
    assert all(list(s.symbols) == sorted(s.symbols) for s in first.shards)


@given(SYMBOL_SETS, SYMBOL)
def test_a_listing_changes_exactly_one_shard(symbols: set[str], newcomer: str) -> None:
    symbols.discard(newcomer)
    before = build_plan(SELECT_SPOT, {Market.SPOT: [listed(s) for s in symbols]})
    after = build_plan(SELECT_SPOT, {Market.SPOT: [listed(s) for s in (*symbols, newcomer)]})
    home = f"spot-{slot_of(newcomer, 4):03d}"
    prefix = newcomer.lower() + "@"
    assert diff(before, after) == {
        home: StreamChange((prefix + "depth@100ms", prefix + "trade"), ())
    }
    for old, new in zip(before.shards, after.shards, strict=True):
        assert old == new or old.id == home


@given(SYMBOL_SETS.filter(bool), st.data())
def test_a_delisting_changes_exactly_one_shard(symbols: set[str], data: st.DataObject) -> None:
    gone = data.draw(st.sampled_from(sorted(symbols)))
    before = build_plan(SELECT_SPOT, {Market.SPOT: [listed(s) for s in symbols]})
    entries = [listed(s, "BREAK" if s == gone else "TRADING") for s in symbols]
    changes = diff(before, build_plan(SELECT_SPOT, {Market.SPOT: entries}))
    assert list(changes) == [f"spot-{slot_of(gone, 4):03d}"]
    assert changes[f"spot-{slot_of(gone, 4):03d}"].added == ()


# --- symbol universes -----------------------------------------------------------------------


def test_explicit_symbols_stream_without_listings_and_stop_when_delisted() -> None:
    config = settings(spot={"symbols": ["BTCUSDT", "ETHUSDT", "LUNAUSDT"]})
    assert build_plan(config).symbols(Market.SPOT) == ("BTCUSDT", "ETHUSDT", "LUNAUSDT")
    listings = {Market.SPOT: [listed("BTCUSDT"), listed("ETHUSDT"), listed("LUNAUSDT", "BREAK")]}
    assert build_plan(config, listings).symbols(Market.SPOT) == ("BTCUSDT", "ETHUSDT")
    assert build_plan(config, listings).not_trading == ((Market.SPOT, "LUNAUSDT"),)
    assert build_plan(config).not_trading == ()
    # An explicit list never grows from listings.
    listings[Market.SPOT].append(listed("SOLUSDT"))
    assert build_plan(config, listings).symbols(Market.SPOT) == ("BTCUSDT", "ETHUSDT")


def test_select_filters_exchange_info() -> None:
    config = settings(
        usdm={"select": {"quote_assets": ["usdt"], "contract_types": ["PERPETUAL"],
                         "exclude": ["ETHUSDT"], "max_symbols": 2}},
    )  # fmt: skip
    listings = {
        Market.USDM: [
            listed("BTCUSDT", ct="PERPETUAL"),
            listed("ETHUSDT", ct="PERPETUAL"),  # excluded
            listed("BTCUSDT_260327", ct="CURRENT_QUARTER"),  # not perpetual
            listed("ETHBTC", quote="BTC", ct="PERPETUAL"),  # other quote
            listed("LUNAUSDT", "SETTLING", ct="PERPETUAL"),  # delisted
            listed("币安人生USDT", ct="PERPETUAL"),  # no ASCII stream name
            listed("ADAUSDT", ct="PERPETUAL"),
            listed("XRPUSDT", ct="PERPETUAL"),  # beyond max_symbols (by name)
        ]
    }
    plan = build_plan(config, listings)
    assert plan.symbols(Market.USDM) == ("ADAUSDT", "BTCUSDT")
    assert plan.missing_listings == ()


def test_select_without_listings_leaves_the_market_empty_and_says_so() -> None:
    config = settings(spot={"symbols": ["BTCUSDT"]}, usdm={"select": {}})
    plan = build_plan(config, {Market.SPOT: [listed("BTCUSDT")]})
    assert plan.symbols(Market.USDM) == ()
    assert plan.missing_listings == (Market.USDM,)
    assert plan.symbols(Market.SPOT) == ("BTCUSDT",)


def test_listings_of_unconfigured_markets_are_ignored() -> None:
    plan = build_plan(settings(spot={"symbols": ["BTCUSDT"]}), {Market.COINM: [listed("X")]})
    assert {shard.market for shard in plan.shards} == {Market.SPOT}


# --- sizes and weights ----------------------------------------------------------------------


def test_a_shard_over_the_stream_limit_is_oversized() -> None:
    config = settings(spot={"select": {}, "shards": 1, "max_streams_per_connection": 3})
    plan = build_plan(config, {Market.SPOT: [listed(s) for s in ("AUSDT", "DUSDT")]})
    (shard,) = plan.shards
    assert connections_needed(shard, config) == plan.connections(shard) == 2  # 4 streams
    assert plan.oversized() == (shard,)
    roomy = settings(spot={"select": {}, "shards": 2, "max_streams_per_connection": 3})
    roomy_plan = build_plan(roomy, {Market.SPOT: [listed(s) for s in ("AUSDT", "DUSDT")]})
    assert [len(s.streams) for s in roomy_plan.shards] == [2, 2]
    assert roomy_plan.oversized() == ()


def test_usdm_routes_are_separate_connections_not_an_oversized_shard() -> None:
    config = settings(
        usdm={"symbols": ["BTCUSDT", "ETHUSDT"], "shards": 1, "max_streams_per_connection": 2,
              "channels": ["aggTrade", "depth@100ms"]},
    )  # fmt: skip
    plan = build_plan(config)
    (shard,) = plan.shards
    assert connections_needed(shard, config) == 2  # /public: 2 depth, /market: 2 aggTrade
    assert plan.oversized() == ()
    three = settings(
        usdm={"symbols": ["BTCUSDT", "ETHUSDT", "BNBUSDT"], "shards": 1,
              "max_streams_per_connection": 2, "channels": ["aggTrade", "depth@100ms"]},
    )  # fmt: skip
    assert build_plan(three).oversized() == build_plan(three).shards


def test_a_url_too_long_is_oversized_below_the_stream_count() -> None:
    symbols = [f"SYM{i:05d}LONGNAMEUSDT" for i in range(300)]
    config = settings(spot={"symbols": symbols, "shards": 1, "channels": ["aggTrade"]})
    plan = build_plan(config)
    assert len(plan.shards[0].streams) < 1024
    assert plan.oversized() == plan.shards


def test_weights_rank_busy_channels_above_quiet_ones() -> None:
    assert stream_weight("btcusdt@depth@100ms") > 5 * stream_weight("btcusdt@kline_1m")
    assert stream_weight("!bookTicker") > stream_weight("btcusdt@bookTicker")
    assert stream_weight("btcusdt@someFutureChannel") == 1.0
    plan = build_plan(settings(spot={"symbols": ["BTCUSDT"], "channels": ["trade", "kline_1m"]}))
    home = plan.shard(f"spot-{slot_of('BTCUSDT', 8):03d}")
    assert home.weight == stream_weight("btcusdt@trade") + stream_weight("btcusdt@kline_1m")
    assert {s.weight for s in plan.shards if s is not home} == {0.0}


def test_diff_counts_a_layout_change_as_whole_shards() -> None:
    old = build_plan(
        settings(spot={"symbols": ["BTCUSDT"], "shards": 1, "market_wide": ["!miniTicker@arr"]})
    )
    new = build_plan(settings(spot={"symbols": ["BTCUSDT"], "shards": 2}))
    assert slot_of("BTCUSDT", 2) == 0  # so BTCUSDT stays in spot-000
    assert diff(old, new) == {"spot-wide": StreamChange((), ("!miniTicker@arr",))}
    assert diff(new, old) == {"spot-wide": StreamChange(("!miniTicker@arr",), ())}
    assert diff(new, new) == {}


# --- pair-keyed streams (docs/binance-streams.md) --------------------------------------------


def test_pair_keyed_streams_are_shared_by_the_pairs_contracts_and_placed_by_the_pair() -> None:
    contracts = [
        ListedSymbol("BTCUSD_PERP", "TRADING", "BTC", "USD", "PERPETUAL", "BTCUSD"),
        ListedSymbol("BTCUSD_261225", "TRADING", "BTC", "USD", "CURRENT_QUARTER", "BTCUSD"),
    ]
    config = settings(
        coinm={"symbols": [c.symbol for c in contracts], "shards": 64,
               "channels": ["aggTrade", "indexPrice", "continuousKline_1m"]}
    )  # fmt: skip
    plan = build_plan(config, {Market.COINM: contracts})
    holders = [s for s in plan.shards if "btcusd@indexPrice" in s.streams]
    assert len(holders) == 1  # one subscription for both contracts
    assert holders[0].id == f"coinm-{slot_of('BTCUSD', 64):03d}"
    streams = {name for shard in plan.shards for name in shard.streams}
    assert streams == {
        "btcusd_perp@aggTrade",
        "btcusd_261225@aggTrade",
        "btcusd@indexPrice",
        "btcusd_perpetual@continuousKline_1m",
        "btcusd_current_quarter@continuousKline_1m",
    }


def test_without_exchange_info_only_names_that_need_no_guess_are_built() -> None:
    config = settings(
        usdm={"symbols": ["BTCUSDT"], "channels": ["aggTrade", "continuousKline_1m"]},
        coinm={"symbols": ["BTCUSD_PERP", "BTCUSD_261225"],
               "channels": ["indexPrice", "continuousKline_1m"]},
    )  # fmt: skip
    streams = {name for shard in build_plan(config).shards for name in shard.streams}
    # USDⓈ-M BTCUSDT could be PERPETUAL or TRADIFI_PERPETUAL, a quarter current or next: wait.
    assert streams == {
        "btcusdt@aggTrade",
        "btcusd@indexPrice",
        "btcusd_perpetual@continuousKline_1m",
    }
