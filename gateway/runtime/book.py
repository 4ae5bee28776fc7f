"""Order books at run time: the async shell around :class:`~gateway.binance.book.DepthSynchronizer`.

Diffs are published as they arrive (``depth_update``); this keeps one synchroniser per symbol
beside them, fetches REST snapshots when it asks (one fetch per symbol at a time, paced by the
market's shared weight budget, never inside the socket reader) and publishes what a consumer
needs to rebuild the book from Kafka alone: a ``book_snapshot`` when a symbol is (re)synchronised
(``reason`` initial or gap: the resync marker) and, periodically, the synchronised book itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import replace

from gateway.adapters.binance_rest import BinanceRestClient
from gateway.binance.book import (
    BookSynced,
    DepthDiff,
    DepthSnapshot as SyncSnapshot,
    DepthSynchronizer,
    SequenceGap,
    SyncRules,
    SyncState,
)
from gateway.binance.events.books import BookSnapshot, DepthUpdate, PriceLevel
from gateway.binance.markets import Market
from gateway.binance.policy import RestPriority, backoff
from gateway.binance.rest_payloads import depth_call, parse_depth_body
from gateway.errors import RestAnswerError, RestRequestError
from gateway.metrics import Metrics
from gateway.records.builder import RecordBuilder
from gateway.records.topics import RecordSink

logger = logging.getLogger(__name__)


def as_diff(event: DepthUpdate) -> DepthDiff:
    return DepthDiff(
        event.first_update_id,
        event.final_update_id,
        event.previous_final_update_id,
        [(level.price, level.quantity) for level in event.bids],
        [(level.price, level.quantity) for level in event.asks],
    )


def as_sync_snapshot(snapshot: BookSnapshot) -> SyncSnapshot:
    return SyncSnapshot(
        snapshot.last_update_id,
        [(level.price, level.quantity) for level in snapshot.bids],
        [(level.price, level.quantity) for level in snapshot.asks],
    )


class BookKeeper:
    """Synchronises every symbol's book of one market and publishes its snapshots."""

    def __init__(
        self,
        market: Market,
        rest: BinanceRestClient,
        builder: RecordBuilder,
        sink: RecordSink,
        metrics: Metrics,
        *,
        depth_limit: int = 1000,
        snapshot_interval_s: float | None = None,
        retry_delays: Callable[[], Iterator[float]] = backoff,
    ) -> None:
        """``retry_delays``: the pauses between failed snapshot fetches (capped backoff)."""
        self._retry_delays = retry_delays
        self._market = market
        self._rules = SyncRules.SPOT if market is Market.SPOT else SyncRules.FUTURES
        self._rest = rest
        self._builder = builder
        self._sink = sink
        self._metrics = metrics
        self._depth_limit = depth_limit
        self._interval_s = snapshot_interval_s
        self._books: dict[str, DepthSynchronizer] = {}
        self._pending: dict[str, BookSnapshot] = {}  # the REST snapshot each fetch brought
        self._gapped: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._periodic: asyncio.Task[None] | None = None

    def synchronizer(self, symbol: str) -> DepthSynchronizer | None:
        return self._books.get(symbol)

    async def receive(self, event: DepthUpdate) -> None:
        """A diff from the stream (already published by the pipeline)."""
        book = self._books.get(event.symbol)
        if book is None:
            book = self._books[event.symbol] = DepthSynchronizer(event.symbol, self._rules)
            if self._interval_s and self._periodic is None:
                self._periodic = asyncio.create_task(self._publish_periodically())
        book.receive_update(as_diff(event))
        await self._drain(book)

    def forget(self, symbols: Collection[str]) -> None:
        """Drop the books of symbols this process no longer streams (their shard moved away);
        the next owner syncs them afresh from a snapshot."""
        gone = set(symbols)
        for task in list(self._tasks):
            if task.get_name().removeprefix("snapshot-") in gone:
                task.cancel()  # its snapshot would be published for a book no longer ours
        for symbol in gone:
            self._books.pop(symbol, None)
            self._pending.pop(symbol, None)
            self._gapped.discard(symbol)

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._periodic] if self._periodic else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _drain(self, book: DepthSynchronizer) -> None:
        for update in book.updates_to_emit():
            if isinstance(update, BookSynced):
                snapshot = self._pending.pop(book.symbol)
                reason = "gap" if book.symbol in self._gapped else "initial"
                self._gapped.discard(book.symbol)
                await self._sink.send(self._builder.build(replace(snapshot, reason=reason)))
            elif isinstance(update, SequenceGap):
                self._gapped.add(book.symbol)
                self._metrics.book_resyncs.labels(self._market.value).inc()
        for _ in book.requests_to_send():
            task = asyncio.create_task(self._fetch(book), name=f"snapshot-{book.symbol}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fetch(self, book: DepthSynchronizer) -> None:
        call = depth_call(self._market, book.symbol, self._depth_limit)
        delays = self._retry_delays()
        while True:
            try:
                body = await self._rest.get(
                    call.path, call.params, weight=call.weight, priority=RestPriority.SNAPSHOT
                )
                snapshot = parse_depth_body(
                    body, self._market, book.symbol, time.time_ns() // 1000, reason="initial"
                )
                break
            except (RestRequestError, RestAnswerError) as exc:
                # Whatever REST answers, the book's fetch lives on: nothing waits behind a book
                # (its diffs are published regardless), so it retries with capped backoff.
                # Whether to ask again is the core's call: a book no longer buffering (forgotten,
                # or synced meanwhile) wants no snapshot.
                book.snapshot_failed()
                if not book.requests_to_send():
                    return
                delay = next(delays)
                logger.warning(
                    "%s depth snapshot failed (%s); again in %.1fs", book.symbol, exc, delay
                )
                await asyncio.sleep(delay)
        self._pending[book.symbol] = snapshot
        book.receive_snapshot(as_sync_snapshot(snapshot))
        if book.state is SyncState.SYNCED:
            logger.info(
                "%s %s book synced at update %d",
                self._market.value,
                book.symbol,
                snapshot.last_update_id,
            )
        await self._drain(book)

    async def _publish_periodically(self) -> None:
        assert self._interval_s is not None
        while True:
            await asyncio.sleep(self._interval_s)
            for book in list(self._books.values()):
                if book.state is SyncState.SYNCED:
                    await self._sink.send(self._builder.build(self._local_snapshot(book)))

    def _local_snapshot(self, book: DepthSynchronizer) -> BookSnapshot:
        top = book.book.top(self._depth_limit)
        return BookSnapshot(
            market=self._market.value,
            symbol=book.symbol,
            last_update_id=top.last_update_id,
            reason="periodic",
            bids=[PriceLevel(price, quantity) for price, quantity in top.bids],
            asks=[PriceLevel(price, quantity) for price, quantity in top.asks],
            received_at_us=time.time_ns() // 1000,
        )
