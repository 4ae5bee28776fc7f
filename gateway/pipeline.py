"""The path of one frame: parse (pure) → build records (pure) → Kafka sink, or dead letter.

Nothing is dropped silently: a frame that cannot be parsed, or an event its schema rejects, goes to
the dead-letter topic with the raw bytes and the reason, is counted, and logged once as a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.binance.events.books import DepthUpdate
from gateway.binance.messages import (
    AggTrade,
    ControlReply,
    FrameParser,
    RecordEvent,
    ServerShutdown,
    Trade,
)
from gateway.binance.plausibility import MAX_EVENT_TIME_SKEW_S, event_time_problem
from gateway.books import BookKeeper
from gateway.continuity import TradeContinuity
from gateway.errors import MessageParseError, SerializationError, ServerShutdownNotice
from gateway.liveness import LivenessMonitor
from gateway.metrics import Metrics, field_pattern
from gateway.records.builder import RecordBuilder
from gateway.records.topics import RecordSink, record_size

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FrameLimits:
    """What a frame's records must satisfy before they are trusted (docs/delivery.md)."""

    max_record_bytes: int = 1_000_000
    """kafka.max_record_bytes: a larger record dead-letters its frame (Kafka would refuse it)."""
    max_event_time_skew_s: float = MAX_EVENT_TIME_SKEW_S
    """binance.max_event_time_skew_s: an event time further from the receive time is garbage."""


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
        self._limits = limits or FrameLimits()
        self._builder = builder
        self._sink = sink
        self._metrics = metrics
        self._connection = connection
        self._market = parser.market.value
        self._frames = metrics.frames.labels(self._market)
        self._fields_reported: set[tuple[str, str]] = set()

    async def __call__(self, raw: bytes, received_at_us: int, received_ns: int) -> None:
        self._frames.inc()
        try:
            events = self._parser.parse(raw, received_at_us)
        except MessageParseError as exc:
            await self._dead_letter(raw, received_at_us, "parse", exc.reason, exc.stream)
            return
        stream = self._parser.last_stream
        if self._liveness is not None and stream is not None and events:
            last = events[-1]
            if not isinstance(last, ControlReply | ServerShutdown):
                self._liveness.delivered(self._parser.market, stream, last.record_time_us)
        for event in events:
            if isinstance(event, ControlReply):
                self._on_control_reply(event)
            elif isinstance(event, ServerShutdown):
                raise ServerShutdownNotice(f"{self._connection}: Binance announced a shutdown")
            else:
                await self._publish(event, raw, received_ns)

    async def _publish(self, event: RecordEvent, raw: bytes, received_ns: int) -> None:
        problem = event_time_problem(
            event.record_time_us, event.received_at_us, self._limits.max_event_time_skew_s
        )
        if problem is not None:
            await self._dead_letter(raw, event.received_at_us, "plausibility", problem, None)
            return
        try:
            record = self._builder.build(event)
        except SerializationError as exc:
            await self._dead_letter(raw, event.received_at_us, "encode", str(exc), None)
            return
        if (size := record_size(record)) > self._limits.max_record_bytes:
            # Kafka would refuse it and, before, the gateway stopped: the frame is kept instead.
            error = (
                f"{event.KIND} record of {size} bytes exceeds kafka.max_record_bytes "
                f"{self._limits.max_record_bytes}"
            )
            await self._dead_letter(raw, event.received_at_us, "size", error, None)
            return
        for name in event.extra:
            self._report_unknown_field(event.KIND, name)
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
        await self._dead_letter(raw, received_at_us, "frame", error, None)

    async def _dead_letter(
        self, raw: bytes, received_at_us: int, stage: str, error: str, stream: str | None
    ) -> None:
        logger.warning(
            "dead-lettered a frame on %s at %s: %.500s",
            self._connection,
            stage,
            error,
            extra={"event_data": {"connection": self._connection, "stage": stage}},
        )
        self._metrics.dead_letters.labels(self._market, stage).inc()
        record = self._builder.dead_letter(
            market=self._market,
            stream=stream,
            stage=stage,
            error=error,
            raw=raw,
            received_at_us=received_at_us,
        )
        await self._sink.send(record)

    def _report_unknown_field(self, kind: str, name: str) -> None:
        # The record's extra map keeps the position (B[3].x); the metric and the log name the
        # field once for every element (B[].x), so a field new in a 50-item array is one series.
        name = field_pattern(name)
        self._metrics.unknown_fields.labels(self._market, kind, name).inc()
        if (kind, name) not in self._fields_reported:
            # Once per field and connection: enough to prompt a schema change, not a log flood.
            self._fields_reported.add((kind, name))
            logger.warning(
                "Binance sent field %r in %s %s events; kept in 'extra' until a schema names it",
                name,
                self._market,
                kind,
            )

    def _on_control_reply(self, reply: ControlReply) -> None:
        if reply.error_code is not None:
            logger.error(
                "Binance rejected control request %s on %s: %s %s",
                reply.request_id,
                self._connection,
                reply.error_code,
                reply.error_message,
            )
