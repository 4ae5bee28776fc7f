"""The path of one frame: parse (pure) → build records (pure) → Kafka sink, or dead letter.

Nothing is dropped silently: a frame that cannot be parsed, or an event its schema rejects, goes to
the dead-letter topic with the raw bytes and the reason, is counted, and logged once as a warning
(the bookkeeping is :class:`gateway.runtime.publishing.PublishStep`, shared with the account streams).
"""

from __future__ import annotations

import logging

from gateway.binance.events.books import DepthUpdate
from gateway.binance.events.klines import ContinuousKline, Kline
from gateway.binance.messages import (
    AggTrade,
    ControlReply,
    FrameParser,
    RecordEvent,
    ServerShutdown,
    Trade,
)
from gateway.errors import MessageParseError, ServerShutdownNotice
from gateway.metrics import Metrics
from gateway.records.builder import RecordBuilder
from gateway.records.topics import RecordSink
from gateway.runtime.book import BookKeeper
from gateway.runtime.liveness import LivenessMonitor
from gateway.runtime.publishing import FrameLimits, PublishStep
from gateway.runtime.sequence import TradeContinuity

__all__ = ["FrameLimits", "FramePipeline"]

logger = logging.getLogger(__name__)


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
        self._frames = metrics.frames.labels(self._market)
        self._step = PublishStep(
            builder,
            sink,
            metrics,
            market=self._market,
            where=connection,
            limits=limits or FrameLimits(),
        )

    async def __call__(self, raw: bytes, received_at_us: int, received_ns: int) -> None:
        self._frames.inc()
        try:
            events = self._parser.parse(raw, received_at_us)
        except MessageParseError as exc:
            await self._step.dead_letter(raw, received_at_us, "parse", exc.reason, exc.stream)
            return
        stream = self._parser.last_stream
        if self._liveness is not None and stream is not None and events:
            last = events[-1]
            if not isinstance(last, ControlReply | ServerShutdown):
                if isinstance(last, Kline | ContinuousKline) and last.closed:
                    # Before the hole it may end is declared: its recovery leaves this one out.
                    self._liveness.closed_kline(self._parser.market, stream, last.open_time_us)
                self._liveness.delivered(self._parser.market, stream, last.record_time_us)
        for event in events:
            if isinstance(event, ControlReply):
                self._on_control_reply(event)
            elif isinstance(event, ServerShutdown):
                raise ServerShutdownNotice(f"{self._connection}: Binance announced a shutdown")
            else:
                await self._publish(event, raw, received_ns)

    async def _publish(self, event: RecordEvent, raw: bytes, received_ns: int) -> None:
        record = await self._step.record(event, raw)
        if record is None:
            return
        self._metrics.events.labels(self._market, event.KIND).inc()
        if self._continuity is not None and isinstance(event, Trade | AggTrade):
            # Trades go through the id bookkeeping: deduped, holes backfilled, gaps declared.
            await self._continuity.receive(event, record, received_ns, raw)
            return
        await self._sink.send(record, received_ns)
        if self._books is not None and isinstance(event, DepthUpdate):
            await self._books.receive(event)

    async def refuse(self, raw: bytes, received_at_us: int, error: str) -> None:
        """A frame the connection refused before parsing (binary, over the size limit)."""
        await self._step.dead_letter(raw, received_at_us, "frame", error, None)

    def _on_control_reply(self, reply: ControlReply) -> None:
        if reply.error_code is not None:
            logger.error(
                "Binance rejected control request %s on %s: %s %s",
                reply.request_id,
                self._connection,
                reply.error_code,
                reply.error_message,
            )
