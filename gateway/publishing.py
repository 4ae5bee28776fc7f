"""The publish step shared by market connections and account streams.

Both paths turn an event into a record born on its topic, count and log the fields no schema
knows yet, and dead-letter what cannot be parsed or encoded, with the same metrics and the same
log lines: nothing is dropped silently on either path. Where the records go differs (a market's
records go to their kind's topic and bad frames to the shared dead-letter topic; an account's all
go to the account's own topic), so the caller passes the address; the bookkeeping is this one.
"""

from __future__ import annotations

import logging

from gateway.binance.messages import RecordEvent
from gateway.errors import SerializationError
from gateway.metrics import Metrics
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, RecordSink

logger = logging.getLogger(__name__)


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
    ) -> None:
        """``where`` names the connection or account in log lines."""
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
        ``raw`` it came from is dead-lettered because the event's schema rejects it."""
        try:
            record = self._builder.build(event, topic=topic, key=key)
        except SerializationError as exc:
            await self.dead_letter(
                raw, event.received_at_us, "encode", str(exc), None, topic=topic, key=key
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
        """Keep a frame that failed at ``stage`` (``parse``, ``encode``), raw, with the reason:
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
