"""The Kafka side: ``KafkaSink`` around one idempotent AIOKafkaProducer, and topic creation.

Every record passes through one bounded queue and one pump task: connections never call the
producer concurrently (aiokafka slows down when many tasks do, aiokafka#528), memory stays bounded
(a full queue makes the socket readers wait), and sends are never awaited one by one
(aiokafka#1065): the pump only enqueues into aiokafka's batches and counts acks from callbacks.

Nothing the broker would refuse for one record is sent, and nothing it refuses for one record stops
the worker: a record over ``kafka.max_record_bytes`` becomes a dead letter before the send, and one
the broker still refuses for itself (too large, bad timestamp, corrupt: :data:`PER_RECORD_ERRORS`)
becomes a dead letter carrying the broker's error. Only what concerns every record (authorization,
the broker gone past ``request_timeout_ms``) fails the sink, and the worker stops loudly.
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
from aiokafka.errors import (
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.protocol.produce import ProduceRequest

from gateway.adapters.kafka_security import client_options
from gateway.binance.policy import backoff
from gateway.coordination.fencing import Verdict
from gateway.errors import KafkaDeliveryError
from gateway.logs import quiet_repeats
from gateway.records.topics import (
    DEAD_LETTER_KIND,
    HEADER_EVENT_KIND,
    ProducerRecord,
    record_size,
)
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

DeadLetterRoute = Callable[[ProducerRecord, str, str], ProducerRecord]
"""``route(record, stage, error)``: the dead letter standing for a record Kafka cannot take."""

PER_RECORD_ERRORS: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTimestampError,
    CorruptRecordException,
    InvalidMessageError,
)
"""What the broker (or aiokafka before the send) refuses because of the record itself: the record
is dead-lettered with the error and the stream goes on. Every other final error fails the sink."""

_DEAD_LETTER_HEADER = (HEADER_EVENT_KIND, DEAD_LETTER_KIND.encode())

Fence = Callable[[], Verdict]
"""Asked right before each produce request leaves: may this worker still publish (docs/fencing.md)."""


class MembershipLapsed(KafkaError):  # type: ignore[misc]
    """The group membership is unconfirmed: aiokafka keeps the batch and tries it again."""

    retriable = True


class MembershipFenced(KafkaError):  # type: ignore[misc]
    """The worker was expelled from the group: its held records must not be written."""

    retriable = False


def fence_producer(producer: AIOKafkaProducer, fence: Fence) -> None:
    """Ask ``fence`` before every produce request of ``producer``, at the last moment.

    The check sits on the client's ``send``, below aiokafka's batching: a record handed to the
    producer before a pause is in one of its batches, and only a check made when the batch
    leaves can keep it from landing after the shard's new owner started. The connection is made
    ready first, so the verdict and the socket write happen in one step of the event loop.
    """
    client = producer.client
    send = client.send

    async def fenced_send(node_id: int, request: object, **kwargs: object) -> object:
        if isinstance(request, ProduceRequest):
            await client.ready(node_id, **kwargs)
            verdict = fence()
            if verdict is Verdict.HOLD:
                raise MembershipLapsed("group membership unconfirmed: holding the batch")
            if verdict is Verdict.REFUSE:
                raise MembershipFenced("expelled from the group: batch not written")
        return await send(node_id, request, **kwargs)

    client.send = fenced_send


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
    refused: int = 0  # records Kafka could not take, sent to the dead-letter topic instead


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
        # None wakes the pump without a record (a flush waiting on a reopen).
        self._queue: asyncio.Queue[tuple[ProducerRecord | None, int]] = asyncio.Queue(
            maxsize=settings.max_buffered_records
        )
        self._producer: AIOKafkaProducer | None = None
        self._pump: asyncio.Task[None] | None = None
        self._failure: KafkaDeliveryError | None = None
        self._dead_letters: DeadLetterRoute | None = None
        # After the broker refuses a batch, the idempotent producer's sequence numbers for that
        # partition are off by one and every later batch fails with OutOfOrderSequenceNumber
        # (aiokafka does not bump the epoch as Java's producer does, KIP-360). Those records were
        # not written, so the pump opens a new producer (a new producer id) and sends them again,
        # with the dead letters, before anything else.
        self._reopen = False
        self._resend: list[tuple[ProducerRecord, int, bool]] = []  # (record, t, send alone)
        self._fence: Fence | None = None
        self.kafka_unavailable = False
        self.stats = SinkStats()

    def route_refusals(self, dead_letter: DeadLetterRoute) -> None:
        """Send what Kafka cannot take for itself to the dead-letter topic (``dead_letter``
        builds the record); until this is called such a record fails the sink."""
        self._dead_letters = dead_letter

    def fence_with(self, fence: Fence) -> None:
        """Publish only while ``fence`` allows (the group membership lease); before start()."""
        self._fence = fence

    async def start(self) -> None:
        quiet_repeats("aiokafka")  # an outage makes it log the same error thousands of times
        self._producer = await self._new_producer()
        self._pump = asyncio.create_task(self._run_pump(), name="kafka-sink-pump")

    async def _new_producer(self) -> AIOKafkaProducer:
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
        if self._fence is not None:
            fence_producer(producer, self._fence)
        return producer

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None:
        """Queue one record; waits while the queue is full (backpressure on the reader)."""
        if self._failure is not None:
            raise self._failure
        limit = self._settings.max_record_bytes
        if (size := record_size(record)) > limit and self._dead_letters is not None:
            error = (
                f"record of {size} bytes for {record.topic} exceeds kafka.max_record_bytes {limit}"
            )
            record = self._refused(record, "size", error)
        self.stats.enqueued += 1
        await self._queue.put((record, received_ns or time.monotonic_ns()))

    async def _wake_pump(self) -> None:
        await self._queue.put((None, 0))

    async def flush(self) -> None:
        """Wait until every queued record is acknowledged (or the sink has failed)."""
        if self._pump is None or self._pump.done():
            if self._failure is not None:
                raise self._failure
            if self._queue.qsize():
                # Cancelled from outside (the event loop shutting down): nothing sends them.
                raise KafkaDeliveryError(f"{self._queue.qsize()} records unsent: sink stopped")
            return
        while True:
            await self._queue.join()
            if self._producer is not None:
                await self._producer.flush()
            # Delivery callbacks are scheduled with call_soon when the batch futures resolve.
            await asyncio.sleep(0)
            if not self._reopen or self._failure is not None:
                break
            # A refusal left records to send again on a new producer: the pump does that first.
            await self._wake_pump()
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
        while True:
            record, received_ns = await self._queue.get()
            if self._reopen:
                try:
                    await self._reopen_producer()
                except KafkaDeliveryError as exc:  # the new producer could not connect
                    self._failure = self._failure or exc
                    self._queue.task_done()
                    self._abandon_queue()
                    return
            if record is not None:
                await self._hand_over(record, received_ns)
            self._queue.task_done()

    def _abandon_queue(self) -> None:
        """The pump is ending on a failure: what is still queued will not be sent. Count it as
        failed and release it, so that flush() raises the failure instead of waiting forever
        (send() refuses new records from now on)."""
        while True:
            try:
                record, _ = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if record is not None:
                self.stats.failed += 1
            self._queue.task_done()

    async def _hand_over(
        self, record: ProducerRecord, received_ns: int, alone: bool = False
    ) -> None:
        assert self._producer is not None
        future = await self._enqueue(self._producer, record)
        if future is not None:
            future.add_done_callback(
                functools.partial(self._delivered, record=record, t=received_ns, alone=alone)
            )
            if alone:
                await self._producer.flush()

    async def _reopen_producer(self) -> None:
        """Settle the producer whose sequence a refusal broke, then send what it could not on a
        new one, in the order the callbacks reported it (per partition, the send order)."""
        old = self._producer
        assert old is not None
        await old.flush()
        await asyncio.sleep(0)  # the last delivery callbacks
        self._reopen = False
        await old.stop()
        self._producer = await self._new_producer()
        logger.warning("reopened the Kafka producer after a refusal; resending %d records",
                       len(self._resend))  # fmt: skip
        resend, self._resend = self._resend, []
        for record, received_ns, alone in resend:
            await self._hand_over(record, received_ns, alone)

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
                if self._reroutable(record, exc):
                    # Refused before the send (aiokafka's own size check): the dead letter
                    # takes the record's place in the order.
                    record = self._refused(record, "kafka", f"{type(exc).__name__}: {exc}")
                    continue
                if not (exc.retriable or isinstance(exc, KafkaTimeoutError)):
                    self._fail(record, exc)
                    return None
                if not self.kafka_unavailable:
                    self.kafka_unavailable = True
                    logger.warning("Kafka unavailable (%s); holding records until it is back", exc)
                await asyncio.sleep(next(delays))

    def _delivered(
        self,
        future: asyncio.Future[object],
        *,
        record: ProducerRecord,
        t: int,
        alone: bool,
    ) -> None:
        exc = None if future.cancelled() else future.exception()
        if future.cancelled() or exc is not None:
            self._on_error(type(exc).__name__ if exc is not None else "Cancelled")
            if exc is not None and self._reroutable(record, exc):
                # The broker refuses whole batches: a record sent with others is tried again in
                # a batch of its own, and dead-lettered only if refused there too.
                if alone:
                    record = self._refused(record, "kafka", f"{type(exc).__name__}: {exc}")
                self._resend.append((record, t, not alone))
                self._request_reopen()
                return
            if isinstance(exc, OutOfOrderSequenceNumber) and self._reopen:
                # Behind a refused batch on the same producer: not written, sent again.
                self._resend.append((record, t, alone))
                return
            self._fail(record, exc)
        else:
            self.stats.acked += 1
            if self._on_ack is not None:
                self._on_ack(record, time.monotonic_ns() - t)

    def _request_reopen(self) -> None:
        """The pump reopens the producer before its next record; wake it now, or a refusal with
        nothing queued behind it would hold its resends (and their dead letters) until the
        next record arrives, which for a quiet topic may be never."""
        if self._reopen:
            return
        self._reopen = True
        with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes the pump anyway
            self._queue.put_nowait((None, 0))

    def _reroutable(self, record: ProducerRecord, exc: BaseException) -> bool:
        """Whether ``exc`` refuses this record only, and it can go to the dead-letter topic
        (a dead letter the broker refuses has nowhere else to go: that one fails the sink)."""
        return (
            isinstance(exc, PER_RECORD_ERRORS)
            and self._dead_letters is not None
            and _DEAD_LETTER_HEADER not in record.headers
        )

    def _refused(self, record: ProducerRecord, stage: str, error: str) -> ProducerRecord:
        assert self._dead_letters is not None
        self.stats.refused += 1
        logger.warning(
            "dead-lettered a record for %s (%s): %.300s",
            record.topic,
            stage,
            error,
            extra={"event_data": {"topic": record.topic, "stage": stage}},
        )
        return self._dead_letters(record, stage, error)

    def _fail(self, record: ProducerRecord, exc: BaseException | None) -> None:
        # aiokafka already retried retriable errors within the delivery timeout; what reaches
        # here is final, so the data is not in Kafka and the worker must not carry on as if.
        self.stats.failed += 1
        if isinstance(exc, MembershipFenced) and self._failure is not None:
            return  # every held batch fails at once: the first one's line says it
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
