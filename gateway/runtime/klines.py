"""Kline recovery at run time: the async shell around :mod:`gateway.binance.kline_recovery`.

When a kline stream's hole is bounded (its first event after a reconnect arrived), the candles
that closed inside it are fetched from REST ``klines`` / ``continuousKlines`` at the BACKFILL
priority and published as closed kline records of the stream's topic, with the header
``backfilled: 1``. The window's ``gap`` record still goes out (consumers learn the window), once
the fetch is over, saying ``recovered`` true, or false if REST kept failing for ``give_up_s``
(logged as an error). Rows that do not parse or encode are dead-lettered with the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping

import orjson

from gateway.adapters.binance_rest import BinanceRestClient
from gateway.binance.kline_recovery import ClosedKlines, KlineSeries, KlineWindowFetch, series_of
from gateway.binance.markets import Market
from gateway.binance.policy import RestPriority, RetryDeadline
from gateway.binance.rest_payloads import parse_kline_rows
from gateway.errors import RestAnswerError, RestRequestError, SerializationError
from gateway.metrics import Metrics
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, RecordSink
from gateway.runtime.publishing import dead_letter_answer
from gateway.runtime.sequence import BACKFILLED_HEADER

logger = logging.getLogger(__name__)

Declare = Callable[[Market, str, int | None, int | None, str, bool | None], None]
"""Declares a window: market, stream, start, end, reason, recovered."""


class KlineRecovery:
    """Fetches and publishes the candles kline streams lost in their holes."""

    def __init__(
        self,
        rest: Mapping[Market, BinanceRestClient],
        builder: RecordBuilder,
        sink: RecordSink,
        metrics: Metrics,
        *,
        give_up_s: float = 120.0,
    ) -> None:
        self._rest = rest
        self._builder = builder
        self._sink = sink
        self._metrics = metrics
        self._give_up_s = give_up_s
        self.closed = ClosedKlines()
        self._fetches: dict[asyncio.Task[bool], tuple[Market, str, int, int, str, Declare]] = {}

    def recoverable(self, market: Market, stream: str) -> bool:
        series = series_of(stream)
        if series is None or market not in self._rest:
            return False
        return series.kind == "kline" or market is not Market.SPOT

    def recover(
        self, market: Market, stream: str, start_us: int, end_us: int, reason: str, then: Declare
    ) -> None:
        """Fetch the window's candles in the background, then ``then`` declares the window."""
        series = series_of(stream)
        assert series is not None
        window = KlineWindowFetch(market, series, start_us, end_us, self.closed.of(market, stream))
        task = asyncio.create_task(self._fetch_window(window, stream), name=f"klines-{stream}")
        self._fetches[task] = (market, stream, start_us, end_us, reason, then)
        task.add_done_callback(self._done)

    def forget(self, market: Market, streams: Collection[str]) -> None:
        self.closed.forget(market, streams)

    async def stop(self) -> None:
        """Cancel fetches in flight: their windows are declared not recovered."""
        for task in list(self._fetches):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _done(self, task: asyncio.Task[bool]) -> None:
        market, stream, start_us, end_us, reason, then = self._fetches.pop(task)
        recovered = False
        if not task.cancelled():
            if task.exception() is not None:
                logger.error("kline recovery of %s failed: %r", stream, task.exception())
            else:
                recovered = task.result()
        then(market, stream, start_us, end_us, reason, recovered)

    async def _fetch_window(self, window: KlineWindowFetch, stream: str) -> bool:
        """Every page of the window, each retried until ``give_up_s``; False when REST kept
        failing (what the pages before brought is published)."""
        market, series = window.market, window.series
        deadline = RetryDeadline(self._give_up_s, time.monotonic())
        published = 0
        while (request := window.request()) is not None:
            try:
                rows = await self._rest[market].get(
                    request.path,
                    request.params,
                    weight=request.weight,
                    priority=RestPriority.BACKFILL,
                )
                if type(rows) is not list:
                    raise RestAnswerError(f"klines answered a {type(rows).__name__}, not a list")
            except (RestRequestError, RestAnswerError) as exc:
                delay = deadline.next_delay(time.monotonic())
                if delay is None:
                    logger.error(
                        "klines of %s %s for its hole failed for %.0fs (%s): the window stays "
                        "declared, not recovered",
                        market.value,
                        stream,
                        self._give_up_s,
                        exc,
                        extra={"event_data": {"market": market.value, "stream": stream}},
                    )
                    return False
                logger.warning("klines of %s failed (%s); retrying in %.1fs", stream, exc, delay)
                await asyncio.sleep(delay)
                continue
            published += await self._publish(window, series, stream, rows)
        logger.info(
            "%s %s: %d closed klines recovered over %d..%d",
            market.value,
            stream,
            published,
            window.start_us,
            window.end_us,
        )
        return True

    async def _publish(
        self, window: KlineWindowFetch, series: KlineSeries, stream: str, rows: list[object]
    ) -> int:
        market = window.market
        rejected: list[str] = []
        events = parse_kline_rows(rows, market, series, time.time_ns() // 1_000, rejected=rejected)
        answer = orjson.dumps(rows)
        if rejected:
            await self._dead_letter(market, stream, "rest", rejected, answer)
        records: list[ProducerRecord] = []
        refused: list[str] = []
        for index in window.receive_page(events, len(rows)):
            event = events[index]
            try:
                record = self._builder.build(event)
            except SerializationError as exc:
                refused.append(f"{stream} open time {event.open_time_us}: {exc}")
                continue
            record.headers.append(BACKFILLED_HEADER)
            records.append(record)
            self.closed.add(market, stream, event.open_time_us)
        if refused:
            await self._dead_letter(market, stream, "encode", refused, answer)
        for record in records:
            await self._sink.send(record)
        if records:
            self._metrics.backfilled.labels(market.value, series.kind).inc(len(records))
        return len(records)

    async def _dead_letter(
        self, market: Market, stream: str, stage: str, reasons: list[str], answer: bytes
    ) -> None:
        await dead_letter_answer(
            self._builder, self._sink, self._metrics, market=market.value, stream=stream,
            stage=stage, what=f"{stream} kline recovery", reasons=reasons, answer=answer,
        )  # fmt: skip
