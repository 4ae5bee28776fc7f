"""The path of one frame: parse (pure) → build records (pure) → Kafka sink, or dead letter.

Nothing is dropped silently: a frame that cannot be parsed, or an event its schema rejects, goes to
the dead-letter topic with the raw bytes and the reason, is counted, and logged once as a warning
(the bookkeeping is :class:`gateway.runtime.publishing.PublishStep`, shared with the account streams).
"""

from __future__ import annotations

import logging

from gateway.binance.events.books import DepthUpdate
from gateway.binance.events.klines import ContinuousKline, Kline
from gateway.binance.messages import AggTrade, ControlReply, FrameParser, ServerShutdown, Trade
from gateway.errors import MessageParseError, ServerShutdownNotice
from gateway.metrics import Count, Metrics
from gateway.records.builder import RecordBuilder
from gateway.records.topics import RecordSink
from gateway.runtime.book import BookKeeper
from gateway.runtime.liveness import LivenessMonitor
from gateway.runtime.publishing import FrameLimits, PublishStep, Refusal
from gateway.runtime.sequence import TradeContinuity

__all__ = ["FrameLimits", "FramePipeline"]

logger = logging.getLogger(__name__)

_CONNECTION_EVENTS = (ControlReply, ServerShutdown)
"""About the connection itself: no record."""
_TRADES = (Trade, AggTrade)


class FramePipeline:
    """The frame handler of one connection."""

    def __init__(
        self,
        parser: FrameParser,
        builder: RecordBuilder,
        sink: RecordSink,
        metrics: Metrics,
        *,
        connection: str,
        continuity: TradeContinuity | None = None,
        books: BookKeeper | None = None,
        limits: FrameLimits | None = None,
        liveness: LivenessMonitor | None = None,
    ) -> None:
        self._parser = parser
        self._liveness = liveness
        self._continuity = continuity
        self._books = books
        self._sink = sink
        self._metrics = metrics
        self._connection = connection
        self._market = parser.market.value
        # The series the hot path adds to, looked up once (per kind: on its first event).
        self._frames = metrics.frames.labels(self._market)
        self._events: dict[str, Count] = {}
        self._step = PublishStep(
            builder,
            sink,
            metrics,
            market=self._market,
            where=connection,
            limits=limits or FrameLimits(),
        )

    async def __call__(self, raw: bytes, received_at_us: int, received_ns: int) -> None:
        self._frames.value += 1
        parser = self._parser
        try:
            events = parser.parse(raw, received_at_us)
        except MessageParseError as exc:
            await self._step.dead_letter(raw, received_at_us, "parse", exc.reason, exc.stream)
            return
        if not events:
            return
        if self._liveness is not None and parser.last_stream is not None:
            # Once per frame: the stream is alive as of its last event.
            last = events[-1]
            if not isinstance(last, _CONNECTION_EVENTS):
                if isinstance(last, Kline | ContinuousKline) and last.closed:
                    # Before the hole it may end is declared: its recovery leaves this one out.
                    self._liveness.closed_kline(
                        parser.market, parser.last_stream, last.open_time_us
                    )
                self._liveness.delivered(parser.market, parser.last_stream, last.record_time_us)
        for event in events:
            if isinstance(event, _CONNECTION_EVENTS):
                self._on_connection_event(event)
                continue
            # Built without an await: the only awaits per event are the sink's (backpressure).
            record = self._step.build(event)
            if isinstance(record, Refusal):
                await self._step.refuse(record, raw, event.received_at_us)
                continue
            count = self._events.get(event.KIND)
            if count is None:
                count = self._events[event.KIND] = self._metrics.events.labels(
                    self._market, event.KIND
                )
            count.value += 1
            if self._continuity is not None and isinstance(event, _TRADES):
                # Trades go through the id bookkeeping: deduped, holes backfilled, gaps declared.
                await self._continuity.receive(event, record, received_ns, raw)
                continue
            await self._sink.send(record, received_ns)
            if self._books is not None and isinstance(event, DepthUpdate):
                await self._books.receive(event)

    async def refuse(self, raw: bytes, received_at_us: int, error: str) -> None:
        """A frame the connection refused before parsing (binary, over the size limit)."""
        await self._step.dead_letter(raw, received_at_us, "frame", error, None)

    def _on_connection_event(self, event: ControlReply | ServerShutdown) -> None:
        if isinstance(event, ServerShutdown):
            raise ServerShutdownNotice(f"{self._connection}: Binance announced a shutdown")
        if event.error_code is not None:
            logger.error(
                "Binance rejected control request %s on %s: %s %s",
                event.request_id,
                self._connection,
                event.error_code,
                event.error_message,
            )
