"""Rebuild order books from the gateway's topics alone: the consumer-side helper.

Feed it the ``book_snapshot`` records of a market (any order) and its ``depth_update`` records in
topic order (one symbol's diffs sit in one partition); it runs Binance's own synchronisation
procedure (:class:`~gateway.binance.book.DepthSynchronizer`) with those snapshots standing in for
REST, so a gap in the diffs is noticed and bridged by the gateway's next snapshot.

    rebuilder = BookRebuilder("spot")
    for record in snapshots: rebuilder.add_snapshot(record.value)
    for record in diffs: rebuilder.add_diff(record.value)
    book = rebuilder.book("BTCUSDT")        # bids/asks dicts of Decimal -> Decimal
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

from gateway.binance.book import (
    DepthDiff,
    DepthSnapshot,
    DepthSynchronizer,
    OrderBook,
    SequenceGap,
    SyncRules,
    SyncState,
)

Record = Mapping[str, Any]


def _levels(levels: Any) -> list[tuple[Any, Any]]:
    return [(level["price"], level["quantity"]) for level in levels]


class BookRebuilder:
    """Order books of one market, rebuilt from decoded records."""

    def __init__(self, market: str) -> None:
        self._rules = SyncRules.SPOT if market == "spot" else SyncRules.FUTURES
        self._snapshots: dict[str, list[tuple[int, DepthSnapshot]]] = {}
        self._books: dict[str, DepthSynchronizer] = {}
        self._waiting: set[str] = set()
        self.gaps = 0

    def add_snapshot(self, value: Record) -> None:
        snapshot = DepthSnapshot(
            value["last_update_id"], _levels(value["bids"]), _levels(value["asks"])
        )
        entries = self._snapshots.setdefault(value["symbol"], [])
        bisect.insort(entries, (snapshot.last_update_id, snapshot), key=lambda e: e[0])

    def add_diff(self, value: Record) -> None:
        symbol = value["symbol"]
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = DepthSynchronizer(symbol, self._rules)
        book.receive_update(
            DepthDiff(
                value["first_update_id"],
                value["final_update_id"],
                value.get("previous_final_update_id"),
                _levels(value["bids"]),
                _levels(value["asks"]),
            )
        )
        self._answer(book)

    def book(self, symbol: str) -> OrderBook | None:
        """The rebuilt book, or None while no snapshot bridges the diffs seen."""
        book = self._books.get(symbol)
        return book.book if book is not None and book.state is SyncState.SYNCED else None

    def _answer(self, book: DepthSynchronizer) -> None:
        if book.requests_to_send():
            self._waiting.add(book.symbol)
        if book.symbol in self._waiting:
            # The oldest snapshot that still covers what is buffered gives the most diffs to
            # apply; the synchroniser rejects (and asks again for) any that is too old.
            for _, snapshot in self._snapshots.get(book.symbol, []):
                book.receive_snapshot(snapshot)
                if book.state is SyncState.SYNCED:
                    self._waiting.discard(book.symbol)
                    break
                book.requests_to_send()
        self.gaps += sum(isinstance(u, SequenceGap) for u in book.updates_to_emit())
        if book.requests_to_send():  # a gap among the diffs the snapshot released
            self._waiting.add(book.symbol)
