"""History: bounded, exact payloads, id-based lookups."""

from gateway.simulator.engine import Fill, MarketEngine, default_symbol_specs
from gateway.simulator.history import History
from gateway.simulator.payloads import TimeUnit, agg_trade_payload, trade_payload


def filled_history(fills: int, *, max_per_symbol: int = 1_000) -> tuple[History, list[Fill]]:
    specs = default_symbol_specs(["BTCUSDT", "ETHUSDT"], 0)
    engine = MarketEngine(specs, 0)
    history = History([spec.symbol for spec in specs], max_per_symbol)
    generated = []
    for i in range(fills):
        fill = engine.next_fill("BTCUSDT", 1_000_000 * i)
        history.record(fill)
        generated.append(fill)
    return history, generated


def test_payloads_are_exactly_what_was_built_for_the_wire() -> None:
    history, fills = filled_history(20)
    trades = [trade for fill in fills for trade in fill.trades]
    assert history.trades("BTCUSDT") == [trade_payload(trade) for trade in trades]
    assert history.agg_trades("btcusdt") == [agg_trade_payload(fill.agg_trade) for fill in fills]
    assert history.trade_payloads("BTCUSDT", TimeUnit.MICROSECOND) == [
        trade_payload(trade, TimeUnit.MICROSECOND) for trade in trades
    ]
    assert history.trades("ETHUSDT") == []


def test_history_is_bounded_per_symbol_and_kind() -> None:
    history, fills = filled_history(50, max_per_symbol=10)
    aggs = history.agg_trade_records("BTCUSDT")
    assert aggs == [fill.agg_trade for fill in fills[-10:]]
    assert len(history.trade_records("BTCUSDT")) == 10


def test_lookups_from_an_id() -> None:
    history, fills = filled_history(30)
    first = fills[0].agg_trade.agg_trade_id
    assert [a.agg_trade_id for a in history.agg_trades_from("BTCUSDT", first + 5, 3)] == [
        first + 5,
        first + 6,
        first + 7,
    ]
    assert history.agg_trades_from("BTCUSDT", first + 100, 3) == []
    # Older than what is retained: starts at the oldest retained event.
    assert history.agg_trades_from("BTCUSDT", 0, 1)[0].agg_trade_id == first
    # No id: the latest ones.
    assert [a.agg_trade_id for a in history.agg_trades_from("BTCUSDT", None, 2)] == [
        first + 28,
        first + 29,
    ]
    first_trade = fills[0].trades[0].trade_id
    assert history.trades_from("BTCUSDT", first_trade + 2, 1)[0].trade_id == first_trade + 2


def test_lookups_on_an_empty_history() -> None:
    history, _ = filled_history(0)
    assert history.agg_trades_from("BTCUSDT", 5, 10) == []
    assert history.trades_from("BTCUSDT", None, 10) == []
