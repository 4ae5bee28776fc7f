"""Binance's order-book procedure: a local book rebuilt from a snapshot plus diffs is the true book."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from gateway.binance.book import (
    BookSynced,
    DepthDiff,
    DepthSnapshot,
    DepthSynchronizer,
    FetchSnapshot,
    Level,
    OrderBook,
    SequenceGap,
    SyncRules,
    SyncState,
)
from gateway.binance.events.base import Price
from gateway.errors import InvalidStateError


class Exchange:
    """A tiny independent book model producing a contiguous diff chain and snapshots."""

    def __init__(self, seed: int, start_id: int = 100) -> None:
        self.rng = random.Random(seed)
        self.book = OrderBook()
        self.book.last_update_id = start_id
        self.diffs: list[DepthDiff] = []
        self.snapshots: dict[int, DepthSnapshot] = {}

    def step(self) -> DepthDiff:
        rng, last = self.rng, self.book.last_update_id
        span = rng.randint(1, 4)  # one event may carry several update ids

        def levels(base: int) -> list[Level]:
            return [
                (Decimal(base + rng.randint(0, 20)), Decimal(rng.choice([0, 0, 1, 2, 5])))
                for _ in range(rng.randint(0, 4))
            ]

        diff = DepthDiff(last + 1, last + span, last, levels(100), levels(121))
        self.book.apply(diff)
        self.diffs.append(diff)
        self.snapshots[diff.final_update_id] = self.book.top(10_000)
        return diff


def sides(book: OrderBook) -> tuple[dict[Price, Price], dict[Price, Price]]:
    return book.bids, book.asks


def state_of(sync: DepthSynchronizer) -> SyncState:
    """Read afresh: mypy would carry an earlier ``assert sync.state is ...`` across calls."""
    return sync.state


@pytest.mark.parametrize("rules", list(SyncRules))
@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), joined_at=st.integers(0, 30), wait=st.integers(0, 10))
def test_a_book_synced_from_any_snapshot_equals_the_true_book(
    rules: SyncRules, seed: int, joined_at: int, wait: int
) -> None:
    exchange = Exchange(seed)
    for _ in range(joined_at + wait + 40):
        exchange.step()
    sync = DepthSynchronizer("BTCUSDT", rules)
    live = exchange.diffs[joined_at:]
    emitted: list[DepthDiff | BookSynced | SequenceGap] = []
    for index, diff in enumerate(live):
        sync.receive_update(diff)
        if sync.requests_to_send():
            assert index == 0  # one request, no matter how many diffs are buffered
        if index == wait:  # the snapshot arrives `wait` diffs after connecting
            sync.receive_snapshot(exchange.snapshots[diff.final_update_id])
        emitted += sync.updates_to_emit()
    assert sync.state is SyncState.SYNCED
    assert sides(sync.book) == sides(exchange.book)
    assert isinstance(emitted[0], BookSynced)
    # Consumers rebuild the same book from what was emitted: the snapshot, then the diffs.
    rebuilt = OrderBook()
    rebuilt.reset(emitted[0].snapshot)
    for update in emitted[1:]:
        assert isinstance(update, DepthDiff)
        rebuilt.apply(update)
    assert sides(rebuilt) == sides(exchange.book)


@pytest.mark.parametrize("rules", list(SyncRules))
@given(seed=st.integers(0, 10_000), dropped=st.integers(5, 25))
def test_a_missed_diff_is_a_gap_then_a_resync_and_the_book_is_right_again(
    rules: SyncRules, seed: int, dropped: int
) -> None:
    exchange = Exchange(seed)
    for _ in range(40):
        exchange.step()
    sync = DepthSynchronizer("ETHUSDT", rules)
    events = []
    for index, diff in enumerate(exchange.diffs):
        if index == dropped:
            continue
        sync.receive_update(diff)
        if sync.requests_to_send():
            sync.receive_snapshot(exchange.snapshots[diff.final_update_id])
        events += sync.updates_to_emit()
    gaps = [e for e in events if isinstance(e, SequenceGap)]
    assert len(gaps) == 1
    assert gaps[0].expected == exchange.diffs[dropped].first_update_id
    assert sum(isinstance(e, BookSynced) for e in events) == 2
    assert sides(sync.book) == sides(exchange.book)


def test_a_snapshot_older_than_the_buffer_is_fetched_again() -> None:
    exchange = Exchange(1)
    for _ in range(10):
        exchange.step()
    sync = DepthSynchronizer("X", SyncRules.SPOT)
    for diff in exchange.diffs[5:]:
        sync.receive_update(diff)
    assert sync.requests_to_send() == [FetchSnapshot("X")]
    sync.receive_snapshot(exchange.snapshots[exchange.diffs[2].final_update_id])
    assert sync.state is SyncState.BUFFERING
    assert sync.requests_to_send() == [FetchSnapshot("X")]
    sync.receive_snapshot(exchange.snapshots[exchange.diffs[7].final_update_id])
    assert state_of(sync) is SyncState.SYNCED
    assert sides(sync.book) == sides(exchange.book)


def test_duplicates_and_stale_diffs_are_ignored_not_gaps() -> None:
    exchange = Exchange(2)
    for _ in range(6):
        exchange.step()
    sync = DepthSynchronizer("X", SyncRules.FUTURES)
    sync.receive_update(exchange.diffs[0])
    sync.requests_to_send()
    sync.receive_snapshot(exchange.snapshots[exchange.diffs[0].final_update_id])
    for diff in [*exchange.diffs[1:4], exchange.diffs[2], exchange.diffs[3], *exchange.diffs[4:]]:
        sync.receive_update(diff)
    assert not any(isinstance(e, SequenceGap) for e in sync.updates_to_emit())
    assert sides(sync.book) == sides(exchange.book)


def test_a_full_buffer_keeps_the_newest_diffs_and_still_syncs() -> None:
    exchange = Exchange(3)
    for _ in range(30):
        exchange.step()
    sync = DepthSynchronizer("X", SyncRules.SPOT, max_buffered=5)
    for diff in exchange.diffs:
        sync.receive_update(diff)
    sync.requests_to_send()
    sync.receive_snapshot(exchange.snapshots[exchange.diffs[10].final_update_id])  # too old now
    assert sync.state is SyncState.BUFFERING
    sync.receive_snapshot(exchange.snapshots[exchange.diffs[-3].final_update_id])
    assert sides(sync.book) == sides(exchange.book)


def test_failed_fetch_is_asked_again_and_misuse_is_a_bug() -> None:
    sync = DepthSynchronizer("X", SyncRules.SPOT)
    sync.receive_update(DepthDiff(1, 1, None, [], []))
    assert sync.requests_to_send() == [FetchSnapshot("X")]
    sync.receive_update(DepthDiff(2, 2, None, [], []))
    assert sync.requests_to_send() == []  # still in flight
    sync.snapshot_failed()
    assert sync.requests_to_send() == [FetchSnapshot("X")]
    sync.receive_snapshot(DepthSnapshot(1, [(Decimal(1), Decimal(1))], []))
    assert sync.state is SyncState.SYNCED
    with pytest.raises(InvalidStateError):
        sync.receive_snapshot(DepthSnapshot(5, [], []))


def test_top_levels_are_sorted_best_first() -> None:
    book = OrderBook()
    book.reset(
        DepthSnapshot(
            1,
            [(Decimal(1), Decimal(1)), (Decimal(3), Decimal(1))],
            [(Decimal(9), Decimal(1)), (Decimal(7), Decimal(2))],
        )
    )
    top = book.top(1)
    assert (top.bids, top.asks) == ([(Decimal(3), Decimal(1))], [(Decimal(7), Decimal(2))])
