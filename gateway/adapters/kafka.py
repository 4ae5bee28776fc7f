"""The Kafka side: ``KafkaSink`` around one idempotent AIOKafkaProducer, and topic creation.

Every record passes through one bounded queue and one pump task: connections never call the
producer concurrently (aiokafka slows down when many tasks do, aiokafka#528), memory stays bounded
(a full queue makes the socket readers wait), and sends are never awaited one by one
(aiokafka#1065): the pump only enqueues into aiokafka's batches and counts acks from callbacks.
A record Kafka finally refuses is never ignored: the sink fails and the worker stops, loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError

from gateway.adapters.kafka_security import client_options
from gateway.binance.policy import backoff
from gateway.errors import KafkaDeliveryError
from gateway.logs import quiet_repeats
from gateway.records.topics import ProducerRecord
from gateway.settings import KafkaSettings
from gateway.topic_catalogue import (
    TopicSpec,
    data_spec,
    kind_of,
    topic_config as catalogue_topic_config,
)

logger = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36

AckListener = Callable[[ProducerRecord, int], None]
"""Called once per acknowledged record with the nanoseconds since the frame was received."""


@contextlib.contextmanager
def map_kafka_errors(action: str, bootstrap_servers: str) -> Iterator[None]:
    """Translate aiokafka's errors into the gateway's tree, once, at the boundary."""
    try:
        yield
    except KafkaError as exc:
        raise KafkaDeliveryError(
            f"{action} failed against Kafka at {bootstrap_servers}: {type(exc).__name__}: {exc}"
        ) from exc


@dataclass(slots=True)
class SinkStats:
    enqueued: int = 0
    acked: int = 0
    failed: int = 0


class KafkaSink:
    """Sends records to Kafka idempotently (acks=all), batched and compressed."""

    def __init__(
        self,
        settings: KafkaSettings,
        on_ack: AckListener | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_ack = on_ack
        self._on_error = on_error or (lambda error: None)
        """Told the error type of every failed or retried send (for metrics)."""
        self._queue: asyncio.Queue[tuple[ProducerRecord, int]] = asyncio.Queue(
            maxsize=settings.max_buffered_records
        )
        self._producer: AIOKafkaProducer | None = None
        self._pump: asyncio.Task[None] | None = None
        self._failure: KafkaDeliveryError | None = None
        self.kafka_unavailable = False
        self.stats = SinkStats()

    async def start(self) -> None:
        quiet_repeats("aiokafka")  # an outage makes it log the same error thousands of times
        s = self._settings
        producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=s.client_id,
            acks="all",
            enable_idempotence=True,
            compression_type=None if s.compression == "none" else s.compression,
            linger_ms=s.linger_ms,
            max_batch_size=s.max_batch_bytes,
            request_timeout_ms=s.request_timeout_ms,
            **client_options(s.security),
        )
        with map_kafka_errors("connecting the producer", s.bootstrap_servers):
            try:
                await producer.start()
            except BaseException:
                await producer.stop()  # a refused login or no broker: release what start() made
                raise
        self._producer = producer
        self._pump = asyncio.create_task(self._run_pump(), name="kafka-sink-pump")

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None:
        """Queue one record; waits while the queue is full (backpressure on the reader)."""
        if self._failure is not None:
            raise self._failure
        self.stats.enqueued += 1
        await self._queue.put((record, received_ns or time.monotonic_ns()))

    async def flush(self) -> None:
        """Wait until every queued record is acknowledged (or the sink has failed)."""
        if self._pump is None or self._pump.done():
            if self._failure is not None:
                raise self._failure
            if self._queue.qsize():
                # Cancelled from outside (the event loop shutting down): nothing sends them.
                raise KafkaDeliveryError(f"{self._queue.qsize()} records unsent: sink stopped")
            return
        await self._queue.join()
        if self._producer is not None:
            await self._producer.flush()
        # Delivery callbacks are scheduled with call_soon when the batch futures resolve.
        await asyncio.sleep(0)
        if self._failure is not None:
            raise self._failure

    async def stop(self) -> None:
        """Flush what is queued, then close the producer."""
        try:
            if self._pump is not None and not self._pump.done():
                await self.flush()
        finally:
            if self._pump is not None:
                self._pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._pump
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    async def _run_pump(self) -> None:
        assert self._producer is not None
        producer = self._producer
        while True:
            record, received_ns = await self._queue.get()
            future = await self._enqueue(producer, record)
            if future is not None:
                future.add_done_callback(
                    functools.partial(self._delivered, record=record, t=received_ns)
                )
            self._queue.task_done()

    async def _enqueue(
        self, producer: AIOKafkaProducer, record: ProducerRecord
    ) -> asyncio.Future[object] | None:
        """Hand one record to the producer; while Kafka is unreachable, wait and retry it.

        aiokafka's send() waits for room in the partition's batch and times out when the broker
        does not drain it: an outage, not a bad record. Retrying here, in order, keeps the record
        and everything behind it; the bounded queue meanwhile makes the socket readers wait.
        """
        delays = backoff(initial_s=0.5, max_s=5.0)
        while True:
            try:
                future: asyncio.Future[object] = await producer.send(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                    timestamp_ms=record.timestamp_ms,
                )
                if self.kafka_unavailable:
                    self.kafka_unavailable = False
                    logger.warning("Kafka accepts records again")
                return future
            except KafkaError as exc:
                # KafkaTimeoutError is not flagged retriable, but from send() it only means no
                # broker drained the batch in time: the outage case.
                self._on_error(type(exc).__name__)
                if not (exc.retriable or isinstance(exc, KafkaTimeoutError)):
                    self._fail(record, exc)
                    return None
                if not self.kafka_unavailable:
                    self.kafka_unavailable = True
                    logger.warning("Kafka unavailable (%s); holding records until it is back", exc)
                await asyncio.sleep(next(delays))

    def _delivered(self, future: asyncio.Future[object], *, record: ProducerRecord, t: int) -> None:
        exc = None if future.cancelled() else future.exception()
        if future.cancelled() or exc is not None:
            self._on_error(type(exc).__name__ if exc is not None else "Cancelled")
            self._fail(record, exc)
        else:
            self.stats.acked += 1
            if self._on_ack is not None:
                self._on_ack(record, time.monotonic_ns() - t)

    def _fail(self, record: ProducerRecord, exc: BaseException | None) -> None:
        # aiokafka already retried retriable errors within the delivery timeout; what reaches
        # here is final, so the data is not in Kafka and the worker must not carry on as if.
        self.stats.failed += 1
        logger.error(
            "Kafka refused a record for %s: %s",
            record.topic,
            exc,
            extra={"event_data": {"topic": record.topic}},
        )
        if self._failure is None:
            self._failure = KafkaDeliveryError(f"record for {record.topic} not delivered: {exc}")


def topic_config(settings: KafkaSettings, topic: str) -> dict[str, str]:
    """A data topic's config, its kind read from its name (see :mod:`gateway.topic_catalogue`)."""
    return catalogue_topic_config(settings, kind_of(topic))


async def ensure_topics(settings: KafkaSettings, topics: Iterable[str | TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created.

    A name stands for a data topic with the configured settings of its kind. Existing topics
    are left as they are: their configuration belongs to whoever runs Kafka.
    """
    specs = {
        spec.name: spec
        for spec in (t if isinstance(t, TopicSpec) else data_spec(settings, t) for t in topics)
    }
    wanted = [specs[name] for name in sorted(specs)]
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id}-admin",
        request_timeout_ms=settings.request_timeout_ms,
        **client_options(settings.security),
    )
    with map_kafka_errors("creating topics", settings.bootstrap_servers):
        try:
            await admin.start()
            response = await admin.create_topics(
                [
                    NewTopic(spec.name, spec.partitions, spec.replicas, topic_configs=spec.config)
                    for spec in wanted
                ]
            )
        finally:
            await admin.close()
    created = []
    for topic, code, message in response.topic_errors:
        if code == 0:
            created.append(topic)
        elif code != TOPIC_ALREADY_EXISTS:
            raise KafkaDeliveryError(f"cannot create topic {topic}: error {code} {message}")
    if created:
        logger.info("created topics %s", ", ".join(created))
    return created
