"""Helpers for comparing simulator payloads with Binance's documented examples."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.simulator.engine import Fill, default_symbol_specs
from gateway.simulator.market import SimulatedMarket
from gateway.simulator.markets import Market
from gateway.simulator.payloads import TimeUnit
from gateway.simulator.streams import StreamCatalog

START_US = 1_700_000_000_000_000
SYMBOLS = {
    Market.SPOT: ("BTCUSDT", "ETHUSDT", "BNBBTC"),
    Market.USDM: ("BTCUSDT", "ETHUSDT", "SOLUSDT"),
    Market.COINM: ("BTCUSD_PERP", "ETHUSD_PERP"),
}


def assert_conforms(actual: Any, expected: Any, path: str = "$", *, ordered: bool = True) -> None:
    """Same keys in the same order, same value types, recursively.

    ``ordered=False`` compares key sets only: Binance's SDK examples (``*.merged.json``) come
    from generated specs whose key order differs between two examples of one payload.

    A list is checked element by element against the example's first element (or position by
    position when the example mixes types, like a kline row); an empty example list or object (a
    placeholder in the docs) only fixes the type.
    """
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        if expected:
            same = list(actual) == list(expected) if ordered else set(actual) == set(expected)
            assert same, f"{path}: keys {list(actual)} != {list(expected)}"
            for key, value in expected.items():
                assert_conforms(actual[key], value, f"{path}.{key}", ordered=ordered)
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: {actual!r} is not an array"
        if len({type(item) for item in expected}) > 1:  # a tuple, like a kline row
            assert len(actual) == len(expected), f"{path}: {len(actual)} items"
            for index, (item, example) in enumerate(zip(actual, expected, strict=True)):
                assert_conforms(item, example, f"{path}[{index}]", ordered=ordered)
        elif expected and actual:
            for index, item in enumerate(actual):
                assert_conforms(item, expected[0], f"{path}[{index}]", ordered=ordered)
    else:
        assert type(actual) is type(expected), (
            f"{path}: {actual!r} ({type(actual).__name__}) is not {type(expected).__name__}"
        )


class Scenario:
    """A market that has traded for a few simulated minutes, for rendering any stream."""

    def __init__(
        self,
        market: Market,
        *,
        fills: int = 2_000,
        step_us: int = 150_000,
        merged: bool = False,
        other_market_symbols: tuple[str, ...] = (),
    ) -> None:
        self.market_kind = market
        self.symbols = SYMBOLS[market]
        specs = default_symbol_specs(self.symbols, 3, market)
        other = {Market.USDM: Market.COINM, Market.COINM: Market.USDM}.get(market, market)
        self.market = SimulatedMarket(
            market,
            specs,
            3,
            max_trades_per_fill=4,
            merged=merged,
            other_market_specs=default_symbol_specs(other_market_symbols, 3, other),
        )
        self.catalog = StreamCatalog(self.symbols, market)
        self.now_us = START_US
        self.fills: list[Fill] = []
        self.step_us = step_us
        self.run(fills)

    def run(self, fills: int) -> None:
        for i in range(fills):
            symbol = self.symbols[i % len(self.symbols)]
            self.fills.append(self.market.step(symbol, self.now_us))
            self.now_us += self.step_us // len(self.symbols)

    def render(self, name: str, unit: TimeUnit = TimeUnit.MILLISECOND) -> list[Any]:
        """Every frame ``name`` sends now (subscribing it first if needed, then trading on)."""
        key = self.catalog.key(name)
        assert key is not None, f"{name} is not served on {self.market_kind}"
        frames: list[Any] = []
        for _ in range(20):  # random streams (liquidations) may need a few periods
            makers = self.market.render(name, key, self.now_us)
            frames = [make(unit) for make in makers]
            if frames:
                return frames
            self.run(30)
        return frames

    def one(self, name: str) -> Any:
        frames = self.render(name)
        assert frames, f"{name} sent nothing"
        return frames[-1]


Producer = Callable[[Scenario], Any]
