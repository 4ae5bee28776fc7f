"""Order-book synchronisation, Binance's documented procedure as a pure state machine.

One :class:`DepthSynchronizer` per symbol. The connection feeds it diffs (``receive_update``),
the snapshot fetcher feeds it REST snapshots (``receive_snapshot``); it asks for snapshots through
``requests_to_send()`` and hands out what to publish through ``updates_to_emit()``. It never
waits, sleeps or does I/O, so the socket reader never blocks on REST, and a gap resets this
symbol only.

Spot (docs/binance.md §5.1): buffer diffs; a snapshot older than the first buffered ``U`` is fetched
again; drop buffered diffs with ``u <= lastUpdateId``; the first applied diff must straddle
``lastUpdateId + 1``; afterwards each diff's ``U`` must be the previous ``u + 1``.
Futures (§5.2): drop diffs with ``u < lastUpdateId``; the first applied diff must have
``U <= lastUpdateId <= u``; afterwards each diff's ``pu`` must equal the previous ``u``.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.binance.events.base import Price
from gateway.errors import InvalidStateError

logger = logging.getLogger(__name__)

Level = tuple[Price, Price]
"""(price, quantity); quantity 0 removes the level."""


class SyncRules(enum.Enum):
    SPOT = "spot"
    FUTURES = "futures"


class SyncState(enum.Enum):
    BUFFERING = "buffering"
    SYNCED = "synced"


@dataclass(frozen=True, slots=True)
class DepthDiff:
    """One diff-depth event, protocol fields only."""

    first_update_id: int  # U
    final_update_id: int  # u
    previous_final_update_id: int | None  # pu (futures only)
    bids: Sequence[Level]
    asks: Sequence[Level]


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """A REST depth snapshot."""

    last_update_id: int
    bids: Sequence[Level]
    asks: Sequence[Level]


@dataclass(frozen=True, slots=True)
class FetchSnapshot:
    """Request: fetch a REST snapshot for this symbol, then call ``receive_snapshot``."""

    symbol: str


@dataclass(frozen=True, slots=True)
class BookSynced:
    """The book was (re)built from this snapshot; the diffs emitted next continue it."""

    symbol: str
    snapshot: DepthSnapshot


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """Diffs were missed: the book is discarded and rebuilt from a new snapshot."""

    symbol: str
    expected: int
    received: DepthDiff


BookEvent = DepthDiff | BookSynced | SequenceGap

_TRANSITIONS = {
    (SyncState.BUFFERING, SyncState.SYNCED),
    (SyncState.SYNCED, SyncState.BUFFERING),
}


class OrderBook:
    """Price levels of one side each; absolute quantities, zero removes."""

    def __init__(self) -> None:
        self.bids: dict[Price, Price] = {}
        self.asks: dict[Price, Price] = {}
        self.last_update_id = -1

    def reset(self, snapshot: DepthSnapshot) -> None:
        self.bids = {p: q for p, q in snapshot.bids if q}
        self.asks = {p: q for p, q in snapshot.asks if q}
        self.last_update_id = snapshot.last_update_id

    def apply(self, diff: DepthDiff) -> None:
        _apply_levels(self.bids, diff.bids)
        _apply_levels(self.asks, diff.asks)
        self.last_update_id = diff.final_update_id

    def top(self, depth: int) -> DepthSnapshot:
        """The best ``depth`` levels per side, as a snapshot."""
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        return DepthSnapshot(self.last_update_id, bids, asks)


def _apply_levels(side: dict[Price, Price], levels: Iterable[Level]) -> None:
    for price, quantity in levels:
        if quantity:
            side[price] = quantity
        else:
            # Removing a level the snapshot never had is normal (docs/binance.md §5.2, step 9).
            side.pop(price, None)


class DepthSynchronizer:
    """Keeps one symbol's book in sync with Binance's diff stream."""

    def __init__(self, symbol: str, rules: SyncRules, *, max_buffered: int = 5_000) -> None:
        self.symbol = symbol
        self.rules = rules
        self.book = OrderBook()
        self._state = SyncState.BUFFERING
        self._buffer: deque[DepthDiff] = deque(maxlen=max_buffered)
        self._first_after_snapshot = False
        self._snapshot_requested = False
        self._requests: list[FetchSnapshot] = []
        self._updates: list[BookEvent] = []

    @property
    def state(self) -> SyncState:
        return self._state

    def receive_update(self, diff: DepthDiff) -> None:
        """A diff from the stream, in arrival order."""
        if self._state is SyncState.BUFFERING:
            # A full buffer drops its oldest diff; receive_snapshot then sees the snapshot is
            # too old for what remains and asks again, so nothing is applied out of order.
            self._buffer.append(diff)
            self._request_snapshot()
            return
        book_id = self.book.last_update_id
        if self._first_after_snapshot:
            if self._before_snapshot(diff, book_id):
                return
            in_sequence = self._straddles(diff, book_id)
        elif diff.final_update_id <= book_id:
            return  # already in the book: a duplicate
        elif self.rules is SyncRules.SPOT:
            in_sequence = diff.first_update_id <= book_id + 1
        else:
            in_sequence = diff.previous_final_update_id == book_id
        if not in_sequence:
            self._on_gap(diff)
            return
        self._first_after_snapshot = False
        self.book.apply(diff)
        self._updates.append(diff)

    def receive_snapshot(self, snapshot: DepthSnapshot) -> None:
        """The REST snapshot asked for by a :class:`FetchSnapshot`."""
        if self._state is not SyncState.BUFFERING:
            raise InvalidStateError(f"{self.symbol}: snapshot received while {self._state.name}")
        self._snapshot_requested = False
        if not self._buffer or snapshot.last_update_id < self._buffer[0].first_update_id:
            # Nothing to anchor it to yet, or older than the first diff we hold: ask again.
            self._request_snapshot()
            return
        pending = [d for d in self._buffer if not self._before_snapshot(d, snapshot.last_update_id)]
        if pending and not self._straddles(pending[0], snapshot.last_update_id):
            # The diffs we hold do not continue this snapshot (a gap while buffering).
            self._buffer.clear()
            self._buffer.extend(pending)
            self._request_snapshot()
            return
        self._buffer.clear()
        self.book.reset(snapshot)
        self._first_after_snapshot = True
        self._set_state(SyncState.SYNCED)
        self._updates.append(BookSynced(self.symbol, snapshot))
        for diff in pending:
            self.receive_update(diff)

    def snapshot_failed(self) -> None:
        """The fetch failed; ask again (the fetcher paces retries)."""
        self._snapshot_requested = False
        if self._state is SyncState.BUFFERING:
            self._request_snapshot()

    def requests_to_send(self) -> list[FetchSnapshot]:
        requests, self._requests = self._requests, []
        return requests

    def updates_to_emit(self) -> list[BookEvent]:
        updates, self._updates = self._updates, []
        return updates

    def _before_snapshot(self, diff: DepthDiff, last_update_id: int) -> bool:
        """Whether a diff is already contained in a snapshot (spot: u <= id; futures: u < id)."""
        if self.rules is SyncRules.SPOT:
            return diff.final_update_id <= last_update_id
        return diff.final_update_id < last_update_id

    def _straddles(self, diff: DepthDiff, last_update_id: int) -> bool:
        """Whether the first diff applied after a snapshot continues it exactly."""
        if self.rules is SyncRules.SPOT:
            return diff.first_update_id <= last_update_id + 1 <= diff.final_update_id
        return diff.first_update_id <= last_update_id <= diff.final_update_id

    def _on_gap(self, diff: DepthDiff) -> None:
        expected = self.book.last_update_id + 1
        logger.warning(
            "%s: depth gap, expected update %d, got %d..%d; resyncing this symbol",
            self.symbol,
            expected,
            diff.first_update_id,
            diff.final_update_id,
        )
        self._updates.append(SequenceGap(self.symbol, expected, diff))
        self._set_state(SyncState.BUFFERING)
        self._buffer.append(diff)
        self._request_snapshot()

    def _request_snapshot(self) -> None:
        if not self._snapshot_requested:
            self._snapshot_requested = True
            self._requests.append(FetchSnapshot(self.symbol))

    def _set_state(self, state: SyncState) -> None:
        if (self._state, state) not in _TRANSITIONS:
            raise InvalidStateError(f"{self.symbol}: {self._state.name} -> {state.name}")
        logger.debug("%s: %s -> %s", self.symbol, self._state.name, state.name)
        self._state = state
