"""The market engine: deterministic under a seed, contiguous ids, aggregates that cover trades."""

from hypothesis import given, strategies as st

from gateway.simulator.engine import (
    Fill,
    MarketEngine,
    SymbolSpec,
    default_symbol_specs,
    split_symbol,
)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBBTC")


def run(seed: int, fills: int, *, max_trades: int | None = None) -> list[Fill]:
    engine = MarketEngine(default_symbol_specs(SYMBOLS, seed), seed)
    return [
        engine.next_fill(
            SYMBOLS[i % len(SYMBOLS)], 1_700_000_000_000_000 + i, max_trades=max_trades
        )
        for i in range(fills)
    ]


def fills_of(fills: list[Fill], symbol: str) -> list[Fill]:
    return [fill for fill in fills if fill.agg_trade.symbol == symbol]


def test_same_seed_and_clock_give_the_same_fills() -> None:
    assert run(seed=7, fills=300) == run(seed=7, fills=300)


def test_another_seed_gives_another_market() -> None:
    assert run(seed=7, fills=300) != run(seed=8, fills=300)


def test_a_symbol_does_not_depend_on_how_calls_interleave() -> None:
    specs = default_symbol_specs(SYMBOLS, 3)
    alone, mixed = MarketEngine(specs, 3), MarketEngine(specs, 3)
    solo = [alone.next_fill("ETHUSDT", 1_000 * i) for i in range(50)]
    together = []
    for i in range(50):
        mixed.next_fill("BTCUSDT", 1_000 * i)
        together.append(mixed.next_fill("ETHUSDT", 1_000 * i))
    assert solo == together


@given(seed=st.integers(0, 2**32), fills=st.integers(1, 120), cap=st.none() | st.integers(1, 6))
def test_ids_are_contiguous_and_aggregates_cover_consecutive_trades(
    seed: int, fills: int, cap: int | None
) -> None:
    generated = run(seed, fills, max_trades=cap)
    for symbol in SYMBOLS:
        own = fills_of(generated, symbol)
        if not own:
            continue
        trade_ids = [trade.trade_id for fill in own for trade in fill.trades]
        agg_ids = [fill.agg_trade.agg_trade_id for fill in own]
        assert trade_ids == list(range(trade_ids[0], trade_ids[0] + len(trade_ids)))
        assert agg_ids == list(range(agg_ids[0], agg_ids[0] + len(agg_ids)))
        for fill in own:
            agg = fill.agg_trade
            assert [t.trade_id for t in fill.trades] == list(
                range(agg.first_trade_id, agg.last_trade_id + 1)
            )
            assert 1 <= len(fill.trades) <= (cap or 4)
            # One taker order at one price: same price, side and time; quantities add up.
            assert {(t.price, t.buyer_is_maker, t.trade_time_us) for t in fill.trades} == {
                (agg.price, agg.buyer_is_maker, agg.trade_time_us)
            }
            assert agg.quantity == sum(t.quantity for t in fill.trades)
            assert agg.event_time_us >= agg.trade_time_us


def test_ids_start_at_each_symbols_offset_and_never_overlap() -> None:
    specs = default_symbol_specs(SYMBOLS, 0)
    for spec, fill in zip(specs, run(0, len(SYMBOLS)), strict=True):
        assert fill.trades[0].trade_id == spec.first_trade_id
        assert fill.agg_trade.agg_trade_id == spec.first_agg_trade_id
    ranges = sorted([s.first_trade_id for s in specs] + [s.first_agg_trade_id for s in specs])
    assert len(set(ranges)) == len(ranges)


def test_prices_move_in_ticks_and_quantities_in_lots() -> None:
    spec = default_symbol_specs(["BTCUSDT"], 0)[0]
    engine = MarketEngine([spec], 0)
    for i in range(500):
        fill = engine.next_fill("BTCUSDT", i)
        assert (fill.agg_trade.price - spec.initial_price) % spec.tick_size == 0
        assert fill.agg_trade.price >= spec.tick_size
        assert all(
            trade.quantity % spec.lot_size == 0 and trade.quantity > 0 for trade in fill.trades
        )


def test_trade_time_never_goes_backwards_even_if_the_clock_does() -> None:
    engine = MarketEngine(default_symbol_specs(["BTCUSDT"], 0), 0)
    times = [engine.next_fill("BTCUSDT", now).agg_trade.trade_time_us for now in (50, 40, 60, 10)]
    assert times == [50, 50, 60, 60]


def test_a_cap_never_shifts_the_random_sequence() -> None:
    capped = MarketEngine(default_symbol_specs(["BTCUSDT"], 1), 1)
    free = MarketEngine(default_symbol_specs(["BTCUSDT"], 1), 1)
    capped.next_fill("BTCUSDT", 0, max_trades=1)
    free.next_fill("BTCUSDT", 0)
    assert (
        capped.next_fill("BTCUSDT", 1).agg_trade.price
        == free.next_fill("BTCUSDT", 1).agg_trade.price
    )


def test_custom_specs_are_used_as_given() -> None:
    spec = SymbolSpec(
        "ABCDEF", "ABC", "DEF", 5_000, 10, 100, first_trade_id=1, first_agg_trade_id=1
    )
    fill = MarketEngine([spec], 0).next_fill("ABCDEF", 0)
    assert fill.trades[0].trade_id == 1 and fill.agg_trade.agg_trade_id == 1


def test_symbols_split_into_base_and_quote() -> None:
    assert split_symbol("BTCUSDT") == ("BTC", "USDT")
    assert split_symbol("BNBBTC") == ("BNB", "BTC")
    assert split_symbol("ETHFDUSD") == ("ETH", "FDUSD")
    assert split_symbol("SYM8USDT") == ("SYM8", "USDT")
