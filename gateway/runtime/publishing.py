"""The publish step shared by market connections and account streams.

Both paths turn an event into a record born on its topic, count and log the fields no schema
knows yet, and dead-letter what cannot be parsed or encoded, with the same metrics and the same
log lines: nothing is dropped silently on either path. Where the records go differs (a market's
records go to their kind's topic and bad frames to the shared dead-letter topic; an account's all
go to the account's own topic), so the caller passes the address; the bookkeeping is this one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.binance.messages import RecordEvent
from gateway.binance.plausibility import MAX_EVENT_TIME_SKEW_S, event_time_problem
from gateway.errors import SerializationError
from gateway.metrics import Metrics, field_pattern
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, RecordSink, record_size

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FrameLimits:
    """What a frame's records must satisfy before they are trusted (docs/delivery.md)."""

    max_record_bytes: int = 1_000_000
    """kafka.max_record_bytes: a larger record dead-letters its frame (Kafka would refuse it)."""
    max_event_time_skew_s: float = MAX_EVENT_TIME_SKEW_S
    """binance.max_event_time_skew_s: an event time further from the receive time is garbage."""


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
        self._builder = builder
        self._sink = sink
        self._metrics = metrics
        self._market = market
        self._where = where
        self._fields_reported: set[tuple[str, str]] = set()

    async def record(
        self,
        event: RecordEvent,
        raw: bytes,
        *,
        topic: str | None = None,
        key: bytes | None = None,
    ) -> ProducerRecord | None:
        """The event's record with its unknown fields reported, or ``None`` once the frame
        ``raw`` it came from is dead-lettered: an implausible event time, a record the schema
        rejects, or one Kafka would refuse for its size."""
        limits = self._limits
        problem = limits and event_time_problem(
            event.record_time_us, event.received_at_us, limits.max_event_time_skew_s
        )
        if problem:
            await self.dead_letter(
                raw, event.received_at_us, "plausibility", problem, None, topic=topic, key=key
            )
            return None
        try:
            record = self._builder.build(event, topic=topic, key=key)
        except SerializationError as exc:
            await self.dead_letter(
                raw, event.received_at_us, "encode", str(exc), None, topic=topic, key=key
            )
            return None
        if limits is not None and (size := record_size(record)) > limits.max_record_bytes:
            # Kafka would refuse it and, before, the gateway stopped: the frame is kept instead.
            error = (
                f"{event.KIND} record of {size} bytes exceeds kafka.max_record_bytes "
                f"{limits.max_record_bytes}"
            )
            await self.dead_letter(
                raw, event.received_at_us, "size", error, None, topic=topic, key=key
            )
            return None
        for name in event.extra:
            self._report_unknown_field(event.KIND, name)
        return record

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
