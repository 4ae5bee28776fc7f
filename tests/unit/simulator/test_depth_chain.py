"""Property: a client following Binance's order-book procedure (docs/binance.md §5) rebuilds the
simulator's own book from any snapshot, with spot's U/u rules and futures' pu rules."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings, strategies as st

from gateway.simulator.book import BookSnapshot, DepthAccumulator, DepthDiff
from gateway.simulator.engine import default_symbol_specs
from gateway.simulator.market import SimulatedMarket
from gateway.simulator.markets import Market

SYMBOL = {Market.SPOT: "BTCUSDT", Market.USDM: "BTCUSDT", Market.COINM: "BTCUSD_PERP"}


class Resync(Exception):
    """The client must start over (Binance's "discard the book and restart")."""


@dataclass
class LocalBook:
    """An independent client: dicts of price -> qty and the book's update id."""

    bids: dict[int, int]
    asks: dict[int, int]
    update_id: int
    previous_final: int | None = None

    @classmethod
    def from_snapshot(cls, snapshot: BookSnapshot) -> LocalBook:
        return cls(dict(snapshot.bids), dict(snapshot.asks), snapshot.last_update_id)

    def apply_levels(self, diff: DepthDiff) -> None:
        for side, levels in ((self.bids, diff.bids), (self.asks, diff.asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)  # removing an unknown level is normal


def sync_spot(snapshot: BookSnapshot, events: list[DepthDiff]) -> LocalBook:
    """docs/binance.md §5.1 steps 4-7."""
    if events and snapshot.last_update_id < events[0].first_update_id:
        raise Resync("snapshot older than the first buffered event")
    book = LocalBook.from_snapshot(snapshot)
    for event in events:
        if event.final_update_id <= book.update_id:
            continue
        if event.first_update_id > book.update_id + 1:
            raise Resync(f"gap: U={event.first_update_id} > {book.update_id} + 1")
        book.apply_levels(event)
        book.update_id = event.final_update_id
    return book


def sync_futures(snapshot: BookSnapshot, events: list[DepthDiff]) -> LocalBook:
    """docs/binance.md §5.2 steps 4-9."""
    book = LocalBook.from_snapshot(snapshot)
    last = snapshot.last_update_id
    for event in events:
        if event.final_update_id < last:
            continue
        if book.previous_final is None:
            if not event.first_update_id <= last <= event.final_update_id:
                raise Resync("first event does not cover the snapshot")
        elif event.previous_final_update_id != book.previous_final:
            raise Resync(f"gap: pu={event.previous_final_update_id} != {book.previous_final}")
        book.apply_levels(event)
        book.previous_final = book.update_id = event.final_update_id
    return book


def run(
    market: Market, seed: int, steps: int, cuts: set[int], snapshot_at: int, lost: set[int]
) -> tuple[BookSnapshot, list[DepthDiff], SimulatedMarket]:
    """Trade ``steps`` steps; cut a diff event after each step in ``cuts`` (losing those in
    ``lost``); take a snapshot after step ``snapshot_at``. Returns (snapshot, events, market)."""
    symbol = SYMBOL[market]
    sim = SimulatedMarket(
        market, default_symbol_specs([symbol], seed, market), seed, max_trades_per_fill=4
    )
    stream = DepthAccumulator(sim.book(symbol).last_update_id)
    events: list[DepthDiff] = []
    snapshot = sim.book(symbol).snapshot()
    for step in range(steps):
        stream.extend(sim.step(symbol, 1_700_000_000_000_000 + step * 1_000).book_changes)
        if step == snapshot_at:
            snapshot = sim.book(symbol).snapshot()
        if step in cuts or step == steps - 1:
            diff = stream.take()
            if diff is not None and step not in lost:
                events.append(diff)
    return snapshot, events, sim


def chain_case() -> st.SearchStrategy[tuple[int, int, set[int], int]]:
    return st.integers(2, 120).flatmap(
        lambda steps: st.tuples(
            st.integers(0, 2**32),
            st.just(steps),
            st.sets(st.integers(0, steps - 1), max_size=steps),
            st.integers(0, steps - 1),
        )
    )


SYNC = {Market.SPOT: sync_spot, Market.USDM: sync_futures, Market.COINM: sync_futures}


@pytest.mark.parametrize("market", list(Market))
@settings(max_examples=60, deadline=None)
@given(case=chain_case())
def test_diff_chain_rebuilds_the_book_from_any_snapshot(
    market: Market, case: tuple[int, int, set[int], int]
) -> None:
    seed, steps, cuts, snapshot_at = case
    snapshot, events, sim = run(market, seed, steps, cuts, snapshot_at, lost=set())
    local = SYNC[market](snapshot, events)
    final = sim.book(SYMBOL[market]).snapshot()
    assert local.update_id == final.last_update_id
    assert sorted(local.bids.items(), reverse=True) == list(final.bids)
    assert sorted(local.asks.items()) == list(final.asks)


@pytest.mark.parametrize("market", list(Market))
@settings(max_examples=40, deadline=None)
@given(case=chain_case(), data=st.data())
def test_a_lost_event_after_the_snapshot_is_always_detected(
    market: Market, case: tuple[int, int, set[int], int], data: st.DataObject
) -> None:
    seed, steps, cuts, snapshot_at = case
    after = sorted(c for c in cuts if snapshot_at < c < steps - 1)
    if not after:
        return
    lost = {data.draw(st.sampled_from(after))}
    snapshot, events, _ = run(market, seed, steps, cuts, snapshot_at, lost)
    with pytest.raises(Resync):
        SYNC[market](snapshot, events)


def test_futures_ids_jump_so_only_pu_chains_them() -> None:
    _, events, _ = run(Market.USDM, 1, 200, set(range(0, 200, 7)), 0, set())
    assert all(
        b.previous_final_update_id == a.final_update_id for a, b in itertools.pairwise(events)
    )
    assert any(b.first_update_id != a.final_update_id + 1 for a, b in itertools.pairwise(events))


def test_spot_ids_are_contiguous_between_events() -> None:
    _, events, _ = run(Market.SPOT, 1, 200, set(range(0, 200, 7)), 0, set())
    assert all(b.first_update_id == a.final_update_id + 1 for a, b in itertools.pairwise(events))
