"""Trade continuity at run time: the async shell around :mod:`gateway.binance.sequence`.

Every trade and aggregate trade passes through one :class:`IdContinuity` per symbol and kind,
shared by all connections of the process, so an event seen twice (a rotation overlap, a
reconnect) reaches Kafka once. A hole is filled from REST by a fetch task per symbol and kind,
paced by the market's shared weight budget; backfilled records carry the header
``backfilled: 1``, and ids REST no longer has become a gap record on ``<prefix>.trade_gap``.

A symbol new to this process starts at its first live id, unless :meth:`TradeContinuity.resume`
seeded it with the last id Kafka holds (``gateway.adapters.kafka_tail.LastIdReader``): then live
ids up to that one are duplicates of what a previous owner published, and the hole up to the first
live id is backfilled like any other. :meth:`TradeContinuity.forget` drops a symbol that moved to
another worker, so taking it back later seeds it from Kafka again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import orjson

from gateway.adapters.binance_rest import BinanceRestClient
from gateway.binance.events.trades import AggTrade, Trade
from gateway.binance.markets import Market
from gateway.binance.policy import RestPriority, RetryDeadline
from gateway.binance.rest_payloads import (
    NEEDS_API_KEY,
    RestCall,
    agg_trades_call,
    historical_trades_call,
    parse_agg_trade_rows,
    parse_trade_rows,
    recent_trades_call,
)
from gateway.binance.sequence import Emit, FetchRange, IdBounds, IdContinuity, IdGap, Rejected
from gateway.errors import RestAnswerError, RestRequestError, SerializationError
from gateway.metrics import Metrics
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, RecordSink
from gateway.runtime.publishing import dead_letter_answer

logger = logging.getLogger(__name__)

TradeEvent = Trade | AggTrade
Key = tuple[str, str]  # (symbol, kind)
Pending = tuple[ProducerRecord, bytes | None]
"""A trade's record and the frame it came in (None: from REST), kept to dead-letter the frame."""
BACKFILLED_HEADER = ("backfilled", b"1")
API_KEY_HEADER = "X-MBX-APIKEY"

_EVENT_ID: dict[str, Callable[[Any], int]] = {
    Trade.KIND: operator.attrgetter("trade_id"),
    AggTrade.KIND: operator.attrgetter("agg_trade_id"),
}


class TradeContinuity:
    """Dedupes, backfills and declares gaps for one market's trades."""

    def __init__(
        self,
        market: Market,
        rest: BinanceRestClient,
        builder: RecordBuilder,
        sink: RecordSink,
        metrics: Metrics,
        *,
        api_key: str | None = None,
        give_up_s: float = 120.0,
        report_held_s: float = 30.0,
        plausibility: IdBounds | None = None,
    ) -> None:
        """``api_key`` (futures): lets trade holes be fetched by id from historicalTrades;
        without one only the latest trades can fill them and older ids become gap records.
        ``give_up_s``: how long a failing backfill retries before declaring its range lost;
        ``report_held_s``: how long a symbol's trades may wait behind a hole unreported."""
        self._market = market
        self._api_key = api_key
        self._give_up_s = give_up_s
        self._bounds = plausibility or IdBounds()
        self._report_held_s = report_held_s
        self._held_since: dict[Key, float] = {}  # monotonic time live trades started waiting
        self._reported: set[Key] = set()
        self._rest = rest
        self._builder = builder
        self._sink = sink
        self._metrics = metrics
        self._sequences: dict[Key, IdContinuity[Pending]] = {}
        self._fetches: dict[Key, asyncio.Task[None]] = {}
        self._publish_lock = asyncio.Lock()  # one drain at a time keeps per-symbol order
        # Live trades on their way to the sink outside the lock (it waits while the buffer is
        # full), and the drain waiting for them to be in it before it sends.
        self._live_sends = 0
        self._live_sent: asyncio.Future[None] | None = None
        self._duplicates = metrics.duplicates.labels(market.value)

    async def receive(
        self,
        event: TradeEvent,
        record: ProducerRecord,
        received_ns: int,
        raw: bytes | None = None,
    ) -> None:
        """A live trade from any connection, with its record already built (and its frame, which
        is what an implausible id dead-letters)."""
        key = (event.symbol, event.KIND)
        sequence = self._sequences.get(key)
        if sequence is None:
            sequence = self._sequences[key] = self._sequence()
        event_id = _EVENT_ID[event.KIND](event)
        if sequence.take_next(event_id):
            # The steady state: the next id, nothing held or waiting.
            await self._send_live(record, received_ns)
            if self._held_since:
                self._watch_held(key, sequence)
            return
        before = sequence.duplicates
        sequence.receive_live(event_id, (record, raw))
        if sequence.duplicates != before:
            self._duplicates.value += 1
        await self._publish(key, sequence, received_ns)

    def resume(self, last_ids: Mapping[Key, int]) -> None:
        """Continue each ``(symbol, kind)`` after the last id Kafka holds for it.

        Call it before the symbols' connections open. Only keys with no sequence yet are seeded:
        a sequence this process already keeps saw every id it published, including those still on
        their way to Kafka, so Kafka's last id cannot be ahead of it unless another worker wrote
        the symbol meanwhile; that is an ownership bug (the symbol should have been forgotten
        when it moved away), logged as a warning, and the sequence is left as it is.
        """
        for key, last_id in last_ids.items():
            if key[1] not in _EVENT_ID:
                raise ValueError(f"no trade continuity for kind {key[1]!r}")
            sequence = self._sequences.get(key)
            if sequence is None:
                self._sequences[key] = self._sequence(last_id)
            elif sequence.last_emitted_id is not None and sequence.last_emitted_id < last_id:
                logger.warning(
                    "%s %s: Kafka holds id %d, past this worker's %d: another worker wrote it",
                    *key,
                    last_id,
                    sequence.last_emitted_id,
                )

    async def catch_up(self, symbols: Collection[str]) -> None:
        """Publish what Binance holds after each symbol's last published id.

        A hole is normally found by the next live trade; a symbol that will never trade here
        again (delisted) has no next trade, so its tail is fetched once, before it is forgotten
        (even while a fetch of a hole is under way: forgetting cancels that fetch).
        """
        wanted = set(symbols)
        for key, sequence in list(self._sequences.items()):
            last = sequence.last_emitted_id
            if key[0] in wanted and last is not None:
                await self._fetch_tail(key, sequence, last + 1, RestPriority.BACKFILL)

    async def probe(self, keys: Collection[Key]) -> None:
        """Publish what Binance holds after the last published id of each ``(symbol, kind)``
        (a quiet stream after a reconnect or hand-over: its hole is otherwise found only at its
        next trade). Only keys a probe can teach something are asked
        (:meth:`~gateway.binance.sequence.IdContinuity.probe_from`), at the lowest REST priority.
        """
        for key in keys:
            sequence = self._sequences.get(key)
            first = None if sequence is None else sequence.probe_from()
            if sequence is not None and first is not None:
                await self._fetch_tail(key, sequence, first, RestPriority.PROBE)

    async def _fetch_tail(
        self, key: Key, sequence: IdContinuity[Pending], first: int, priority: RestPriority
    ) -> None:
        """One page of what REST holds from ``first`` on, published through the sequence."""
        try:
            events, answer = await self._fetch_rows(*key, FetchRange(first, first), priority)
        except (RestRequestError, RestAnswerError) as exc:
            logger.warning("%s %s: the last trades could not be fetched (%s)", *key, exc)
            return
        if self._sequences.get(key) is not sequence:
            return  # forgotten meanwhile (the symbol moved away)
        records, refused = self._backfill_records(events)
        if refused:
            await self._dead_letter_answer(key, "encode", refused, answer)
        for event_id, (record, _) in records:
            record.headers.append(BACKFILLED_HEADER)
            sequence.receive_live(event_id, (record, None))
        self._metrics.backfilled.labels(self._market.value, key[1]).inc(len(records))
        await self._publish(key, sequence, time.monotonic_ns())
        if records:
            logger.info("%s %s: %d trades after id %d caught up", *key, len(records), first - 1)

    def forget(self, symbols: Collection[str]) -> None:
        """Drop the state of symbols this process no longer owns, and cancel their fetches.

        Call it once the symbols' connections are closed. What a cancelled fetch had not
        published yet is a hole for the next owner, which resumes from Kafka and backfills it.
        """
        gone = set(symbols)
        for key in [key for key in self._sequences if key[0] in gone]:
            del self._sequences[key]
            self._held_since.pop(key, None)
            self._reported.discard(key)
        for key in [key for key in self._fetches if key[0] in gone]:
            self._fetches.pop(key).cancel()

    async def stop(self) -> None:
        """Cancel fetches in flight (what they would have brought is re-fetched next start)."""
        for task in list(self._fetches.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def duplicates(self) -> int:
        return sum(s.duplicates for s in self._sequences.values())

    async def _send_live(self, record: ProducerRecord, received_ns: int) -> None:
        """A live trade that is its symbol's next id: after whatever a drain in progress is
        sending (behind the lock), else at once.

        Not under the lock when no drain holds it: with several connections and a full sink
        buffer, every trade queued on the lock, one task switch each (a lock convoy: 1,000
        symbols on five connections cost twice the CPU per event of 50 on one). Readers never
        share a symbol, so live trades need no order among themselves; a drain that starts
        while some wait for room in the sink waits for them first (:meth:`_publish`).
        """
        if self._publish_lock.locked():
            async with self._publish_lock:
                await self._sink.send(record, received_ns)
            return
        self._live_sends += 1
        try:
            await self._sink.send(record, received_ns)
        finally:
            self._live_sends -= 1
            if not self._live_sends and (sent := self._live_sent) is not None:
                self._live_sent = None
                if not sent.done():
                    sent.set_result(None)

    async def _publish(self, key: Key, sequence: IdContinuity[Pending], received_ns: int) -> None:
        async with self._publish_lock:
            while self._live_sends:  # live trades already on their way go first
                if self._live_sent is None:
                    self._live_sent = asyncio.get_running_loop().create_future()
                await asyncio.shield(self._live_sent)
            for item in sequence.to_emit():
                await self._sink.send(self._record(key, item), received_ns)
            for rejected in sequence.to_reject():
                await self._sink.send(self._rejected(key, rejected), received_ns)
        for request in sequence.requests_to_send():
            self._start_fetch(key, sequence, request)
        self._watch_held(key, sequence)

    def _watch_held(self, key: Key, sequence: IdContinuity[Pending]) -> None:
        if not sequence.holding:
            self._held_since.pop(key, None)
            if key in self._reported:
                self._reported.discard(key)
                logger.info("%s %s: live trades flow again", *key)
            return
        now = time.monotonic()
        since = self._held_since.setdefault(key, now)
        if now - since >= self._report_held_s and key not in self._reported:
            self._reported.add(key)
            logger.error(
                "%s %s: live trades held back for %.0fs behind a hole being backfilled",
                *key,
                now - since,
                extra={"event_data": {"symbol": key[0], "kind": key[1]}},
            )

    def held_back(self) -> dict[str, float]:
        """``"SYMBOL kind"`` → seconds its live trades have waited, for those past the bound."""
        now = time.monotonic()
        return {
            f"{symbol} {kind}": round(now - since, 1)
            for (symbol, kind), since in self._held_since.items()
            if now - since >= self._report_held_s
        }

    def _sequence(self, last_id: int | None = None) -> IdContinuity[Pending]:
        b = self._bounds
        return IdContinuity(
            last_id, max_jump=b.max_jump, max_behind=b.max_behind, confirmations=b.confirmations
        )

    def _rejected(self, key: Key, rejected: Rejected[Pending]) -> ProducerRecord:
        """The dead letter of an implausible trade: its frame, or its record if it had none."""
        self._metrics.dead_letters.labels(self._market.value, "plausibility").inc()
        logger.warning(
            "%s %s: dead-lettered implausible id %d: %s",
            *key,
            rejected.event_id,
            rejected.reason,
            extra={"event_data": {"symbol": key[0], "kind": key[1]}},
        )
        record, raw = rejected.event
        if raw is None:
            return self._builder.refused(record, "plausibility", rejected.reason)
        received_at_us = record.timestamp_ms * 1000 if record.timestamp_ms is not None else 0
        return self._builder.dead_letter(
            market=self._market.value,
            stream=None,
            stage="plausibility",
            error=f"{key[0]} {key[1]}: {rejected.reason}",
            raw=raw,
            received_at_us=received_at_us,
        )

    def _record(self, key: Key, item: Emit[Pending] | IdGap) -> ProducerRecord:
        if isinstance(item, IdGap):
            self._metrics.trade_gaps.labels(self._market.value, key[1]).inc(
                item.last_id - item.first_id + 1
            )
            return self._builder.trade_gap(
                market=self._market.value,
                symbol=key[0],
                kind=key[1],
                first_missing_id=item.first_id,
                last_missing_id=item.last_id,
                detected_at_us=time.time_ns() // 1000,
            )
        record, _ = item.event
        if item.backfilled:
            self._metrics.backfilled.labels(self._market.value, key[1]).inc()
            record.headers.append(BACKFILLED_HEADER)
        return record

    def _start_fetch(self, key: Key, sequence: IdContinuity[Pending], request: FetchRange) -> None:
        task = asyncio.create_task(self._fetch(key, sequence, request), name=f"backfill-{key}")
        self._fetches[key] = task
        task.add_done_callback(lambda done: self._fetch_done(key, done))

    def _fetch_done(self, key: Key, task: asyncio.Task[None]) -> None:
        if self._fetches.get(key) is task:
            del self._fetches[key]
        if not task.cancelled() and task.exception() is not None:
            logger.error("backfill of %s failed: %r", key, task.exception())

    async def _fetch(self, key: Key, sequence: IdContinuity[Pending], request: FetchRange) -> None:
        """Fetch one range, whatever REST answers: retried with backoff (paced by the weight
        budget in the client) until ``give_up_s``, then declared lost so the symbol flows on."""
        symbol, kind = key
        deadline = RetryDeadline(self._give_up_s, time.monotonic())
        while True:
            try:
                events, answer = await self._fetch_rows(symbol, kind, request)
                break
            except (RestRequestError, RestAnswerError) as exc:
                delay = deadline.next_delay(time.monotonic())
                if delay is None:
                    logger.error(
                        "backfill of %s %s ids %d..%d failed for %.0fs (%s); declaring them lost",
                        symbol,
                        kind,
                        request.first_id,
                        request.last_id,
                        self._give_up_s,
                        exc,
                    )
                    sequence.backfill_abandoned()
                    await self._publish(key, sequence, time.monotonic_ns())
                    return
                logger.warning(
                    "backfill of %s %s failed (%s); retrying in %.1fs", symbol, kind, exc, delay
                )
                # What to ask again is the core's call (the hole may have grown since); taken in
                # the same step, so no live event starts a second fetch for it meanwhile.
                sequence.backfill_failed()
                retry = sequence.requests_to_send()
                if not retry:
                    return
                request = retry[0]
                self._watch_held(key, sequence)
                await asyncio.sleep(delay)
        logger.info(
            "backfilled %s %s ids %d..%d: %d rows",
            symbol,
            kind,
            request.first_id,
            request.last_id,
            len(events),
        )
        records, refused = self._backfill_records(events)
        sequence.receive_backfill(records)
        if refused:
            await self._dead_letter_answer(key, "encode", refused, answer)
        await self._publish(key, sequence, time.monotonic_ns())

    def _backfill_records(
        self, events: list[TradeEvent]
    ) -> tuple[list[tuple[int, Pending]], list[str]]:
        """The records of the backfilled rows, and why the schema refused any: a refused row's id
        stays missing, so it is declared in a gap record rather than skipped."""
        records: list[tuple[int, Pending]] = []
        refused: list[str] = []
        for event in events:
            event_id = _EVENT_ID[event.KIND](event)
            try:
                records.append((event_id, (self._builder.build(event), None)))
            except SerializationError as exc:
                refused.append(f"{event.KIND} {event.symbol} id {event_id}: {exc}")
        return records, refused

    async def _dead_letter_answer(
        self, key: Key, stage: str, reasons: list[str], answer: bytes
    ) -> None:
        symbol, kind = key
        await dead_letter_answer(
            self._builder, self._sink, self._metrics, market=self._market.value, stream=None,
            stage=stage, what=f"{symbol} {kind} backfill", reasons=reasons, answer=answer,
        )  # fmt: skip

    async def _fetch_rows(
        self,
        symbol: str,
        kind: str,
        request: FetchRange,
        priority: RestPriority = RestPriority.BACKFILL,
    ) -> tuple[list[TradeEvent], bytes]:
        """The rows REST has from ``request.first_id``, and the answer as it came; rows that do
        not parse are left out (their ids stay missing: fetched again, or declared) and the
        answer is dead-lettered with their reasons."""
        received_at_us = time.time_ns() // 1000
        rejected: list[str] = []
        events: list[TradeEvent]
        if kind == AggTrade.KIND:
            call = agg_trades_call(self._market, symbol, request.first_id)
            rows = await self._rest.get(
                call.path, call.params, weight=call.weight, priority=priority
            )
            events = [
                *parse_agg_trade_rows(rows, self._market, symbol, received_at_us, rejected=rejected)
            ]
        else:
            call, headers = self._trades_call(symbol, request.first_id)
            rows = await self._rest.get(
                call.path, call.params, weight=call.weight, headers=headers, priority=priority
            )
            events = [
                *parse_trade_rows(rows, self._market, symbol, received_at_us, rejected=rejected)
            ]
        answer = orjson.dumps(rows)
        if rejected:
            await self._dead_letter_answer((symbol, kind), "rest", rejected, answer)
        return events, answer

    def _trades_call(self, symbol: str, from_id: int) -> tuple[RestCall, dict[str, str] | None]:
        """Trades by id where Binance allows it; futures without an API key: the latest trades,
        of which the sequence keeps those in the hole (the rest of it becomes a gap record)."""
        if self._market not in NEEDS_API_KEY:
            return historical_trades_call(self._market, symbol, from_id), None
        if self._api_key:
            call = historical_trades_call(self._market, symbol, from_id)
            return call, {API_KEY_HEADER: self._api_key}
        return recent_trades_call(self._market, symbol), None
