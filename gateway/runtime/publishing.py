"""The publish step shared by market connections and account streams.

Both paths turn an event into a record born on its topic, count and log the fields no schema
knows yet, and dead-letter what cannot be parsed or encoded, with the same metrics and the same
log lines: nothing is dropped silently on either path. Where the records go differs (a market's
records go to their kind's topic and bad frames to the shared dead-letter topic; an account's all
go to the account's own topic), so the caller passes the address; the bookkeeping is this one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import NamedTuple

from gateway.binance.messages import RecordEvent
from gateway.binance.plausibility import MAX_EVENT_TIME_SKEW_S, event_time_problem
from gateway.errors import SerializationError
from gateway.metrics import Count, Metrics, field_pattern
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, RecordSink, oversize

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FrameLimits:
    """What a frame's records must satisfy before they are trusted (docs/delivery.md)."""

    max_record_bytes: int = 1_000_000
    """kafka.max_record_bytes: a larger record dead-letters its frame (Kafka would refuse it)."""
    max_event_time_skew_s: float = MAX_EVENT_TIME_SKEW_S
    """binance.max_event_time_skew_s: an event time further from the receive time is garbage."""


class Refusal(NamedTuple):
    """Why an event's record is not trusted: the frame it came in is dead-lettered at ``stage``."""

    stage: str
    error: str


async def dead_letter_answer(
    builder: RecordBuilder,
    sink: RecordSink,
    metrics: Metrics,
    *,
    market: str,
    stream: str | None,
    stage: str,
    what: str,
    reasons: list[str],
    answer: bytes,
) -> None:
    """Keep a REST answer with unusable rows (``stage`` ``rest``: rows unreadable; ``encode``:
    rows the schema refuses) in the dead-letter topic, once, with every reason: like a live
    frame that fails, it is there to be looked at and replayed. ``what`` names the fetch
    (``BTCUSDT trade backfill``, ``btcusdt@kline_1m kline recovery``)."""
    logger.warning(
        "%s: REST answered %d unusable rows, dead-lettered (first: %s)",
        what,
        len(reasons),
        reasons[0],
        extra={"event_data": {"market": market, "stream": stream, "stage": stage}},
    )
    metrics.dead_letters.labels(market, stage).inc()
    record = builder.dead_letter(
        market=market,
        stream=stream,
        stage=stage,
        error=f"{what}: " + "; ".join(reasons),
        raw=answer,
        received_at_us=time.time_ns() // 1000,
    )
    await sink.send(record)


class PublishStep:
    """Builds, reports and dead-letters the records of one connection or account stream."""

    def __init__(
        self,
        builder: RecordBuilder,
        sink: RecordSink,
        metrics: Metrics,
        *,
        market: str,
        where: str,
        limits: FrameLimits | None = None,
    ) -> None:
        """``where`` names the connection or account in log lines; ``limits``, when given, are
        checked before a record is trusted (market connections; account events come signed
        from the account's own stream and are not judged)."""
        self._limits = limits
        # Skews up to this many microseconds are surely plausible: one subtraction per event,
        # and event_time_problem() judges the rest (1 us short of the bound, for float rounding).
        self._skew_ok_us = 0.0 if limits is None else limits.max_event_time_skew_s * 1e6 - 1
        self._builder = builder
        self._sink = sink
        self._metrics = metrics
        self._market = market
        self._where = where
        # Unknown field as Binance sent it (``B[3].x``) -> its series and its pattern (``B[].x``).
        self._unknown: dict[tuple[str, str], Count] = {}
        self._fields_reported: set[tuple[str, str]] = set()

    def build(
        self, event: RecordEvent, *, topic: str | None = None, key: bytes | None = None
    ) -> ProducerRecord | Refusal:
        """The event's record with its unknown fields reported, or why its frame must be
        dead-lettered instead: an implausible event time, a record the schema rejects, or one
        Kafka would refuse for its size. No I/O: the caller sends either."""
        limits = self._limits
        if limits is not None:
            event_us, received_us = event.record_time_us, event.received_at_us
            if abs(event_us - received_us) > self._skew_ok_us:
                problem = event_time_problem(event_us, received_us, limits.max_event_time_skew_s)
                if problem:
                    return Refusal("plausibility", problem)
        try:
            record = self._builder.build(event, topic=topic, key=key)
        except SerializationError as exc:
            return Refusal("encode", str(exc))
        if limits is not None and (size := oversize(record, limits.max_record_bytes)) is not None:
            # Kafka would refuse it and, before, the gateway stopped: the frame is kept instead.
            error = (
                f"{event.KIND} record of {size} bytes exceeds kafka.max_record_bytes "
                f"{limits.max_record_bytes}"
            )
            return Refusal("size", error)
        if event.extra:
            for name in event.extra:
                self._report_unknown_field(event.KIND, name)
        return record

    async def record(
        self,
        event: RecordEvent,
        raw: bytes,
        *,
        topic: str | None = None,
        key: bytes | None = None,
    ) -> ProducerRecord | None:
        """:meth:`build`, with the frame ``raw`` dead-lettered (and ``None``) if it refuses."""
        built = self.build(event, topic=topic, key=key)
        if isinstance(built, Refusal):
            await self.refuse(built, raw, event.received_at_us, topic=topic, key=key)
            return None
        return built

    async def refuse(
        self,
        refusal: Refusal,
        raw: bytes,
        received_at_us: int,
        *,
        topic: str | None = None,
        key: bytes | None = None,
    ) -> None:
        """Dead-letter the frame ``raw`` of an event :meth:`build` refused."""
        await self.dead_letter(
            raw, received_at_us, refusal.stage, refusal.error, None, topic=topic, key=key
        )

    async def dead_letter(
        self,
        raw: bytes,
        received_at_us: int,
        stage: str,
        error: str,
        stream: str | None,
        *,
        topic: str | None = None,
        key: bytes | None = None,
    ) -> None:
        """Keep a frame that failed at ``stage`` (``parse``, ``encode``, ``plausibility``,
        ``size``, ``frame``), raw, with the reason:
        in the shared dead-letter topic unless ``topic`` says where."""
        logger.warning(
            "dead-lettered a frame on %s at %s: %.500s",
            self._where,
            stage,
            error,
            extra={"event_data": {"connection": self._where, "stage": stage}},
        )
        self._metrics.dead_letters.labels(self._market, stage).inc()
        record = self._builder.dead_letter(
            market=self._market,
            stream=stream,
            stage=stage,
            error=error,
            raw=raw,
            received_at_us=received_at_us,
            topic=topic,
            key=key,
        )
        await self._sink.send(record)

    def _report_unknown_field(self, kind: str, name: str) -> None:
        series = self._unknown.get((kind, name))
        if series is not None:  # every event once Binance adds a field: one look-up, one add
            series.value += 1
            return
        # The record's extra map keeps the position (B[3].x); the metric and the log name the
        # field once for every element (B[].x), so a field new in a 50-item array is one series.
        pattern = field_pattern(name)
        series = self._metrics.unknown_fields.labels(self._market, kind, pattern)
        self._unknown[(kind, name)] = series
        series.value += 1
        if (kind, pattern) not in self._fields_reported:
            # Once per field and connection: enough to prompt a schema change, not a log flood.
            self._fields_reported.add((kind, pattern))
            logger.warning(
                "Binance sent field %r in %s %s events; kept in 'extra' until a schema names it",
                pattern,
                self._market,
                kind,
            )
