"""The Kafka side: ``KafkaSink`` around one idempotent AIOKafkaProducer, and topic creation.

Every record passes through one bounded buffer and one pump task: connections never call the
producer concurrently (aiokafka slows down when many tasks do, aiokafka#528), memory stays bounded
(a full buffer makes the socket readers wait), and sends are never awaited one by one
(aiokafka#1065). The pump takes what is buffered in chunks, appends each record to its partition's
record batch and hands whole batches to the producer (:mod:`gateway.adapters.kafka_batches`);
acknowledgements are counted per batch, from one callback each.

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
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

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

from gateway.adapters.kafka_batches import Batch, Buffer, Lane, Lanes
from gateway.adapters.kafka_security import client_options
from gateway.binance.policy import backoff
from gateway.coordination.fencing import Verdict
from gateway.errors import KafkaDeliveryError
from gateway.logs import quiet_repeats
from gateway.records.topics import (
    DEAD_LETTER_KIND,
    HEADER_EVENT_KIND,
    ProducerRecord,
    oversize,
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

CHUNK_RECORDS = 4096
"""Records the pump appends to batches before it lets the readers and the sender run again."""

PARTITIONS_REFRESH_S = 30.0
"""How often the pump reads the topics' partition counts again from the producer's metadata
(added partitions move keys, as they do for ``send()``)."""

_T = TypeVar("_T")

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
        # Records accepted and not yet with the producer: the buffer, then the lanes' batches.
        self._buffer: Buffer = deque()
        self._held = 0
        self._max_held = settings.max_buffered_records
        self._lanes = Lanes()
        self._partitions_learned_s = 0.0
        self._in_flight = 0  # batches with the producer, unacknowledged
        # aiokafka sends a closed batch at once, without lingering: the lanes linger instead.
        self._linger_s = settings.linger_ms / 1000
        self._timer: asyncio.TimerHandle | None = None
        self._wake: asyncio.Future[None] | None = None  # the pump waiting for work
        self._woken = False  # work arrived while the pump was busy
        self._room: asyncio.Future[None] | None = None  # senders waiting for room
        self._settle_waiters: list[asyncio.Future[None]] = []
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
        """Queue one record; waits while the buffer is full (backpressure on the reader)."""
        if self._failure is not None:
            raise self._failure
        limit = self._settings.max_record_bytes
        if self._dead_letters is not None and (size := oversize(record, limit)) is not None:
            error = f"record of {size} bytes for {record.topic} exceeds kafka.max_record_bytes {limit}"  # fmt: skip
            record = self._refused(record, "size", error)
        while self._held >= self._max_held:
            if self._room is None:
                self._room = asyncio.get_running_loop().create_future()
            # Shielded: the wait is shared, and a reader cancelled while it waits (its connection
            # closed) must not cancel it for the readers waiting with it.
            await asyncio.shield(self._room)
            if self._failure is not None:
                raise self._failure
        self.stats.enqueued += 1
        self._held += 1
        self._buffer.append((record, received_ns or time.monotonic_ns()))
        self._wake_pump()

    def _wake_pump(self) -> bool:
        """End the pump's wait for work, if it waits; whether it did."""
        if (wake := self._wake) is None:
            return False
        self._wake = None
        if not wake.done():  # cancelled with the pump at stop()
            wake.set_result(None)
        return True

    def _notify_pump(self) -> None:
        if not self._wake_pump():
            self._woken = True

    async def flush(self) -> None:
        """Wait until every queued record is acknowledged (or the sink has failed)."""
        pump = self._pump
        if pump is None or pump.done():
            if self._failure is not None:
                raise self._failure
            if self._held:
                # Cancelled from outside (the event loop shutting down): nothing sends them.
                raise KafkaDeliveryError(f"{self._held} records unsent: sink stopped")
            return
        while not self._settled() and not pump.done():
            waiter = asyncio.get_running_loop().create_future()
            self._settle_waiters.append(waiter)
            self._notify_pump()  # what lingers goes now
            await asyncio.wait([waiter, pump], return_when=asyncio.FIRST_COMPLETED)
        if self._failure is not None:
            raise self._failure

    async def stop(self) -> None:
        """Flush what is queued, then close the producer."""
        try:
            if self._pump is not None and not self._pump.done():
                await self.flush()
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._pump is not None:
                self._pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._pump
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    @property
    def queue_depth(self) -> int:
        """Records accepted and not yet handed to the producer (at most max_buffered_records)."""
        return self._held

    def _settled(self) -> bool:
        return self._held == 0 and self._in_flight == 0 and not self._reopen

    def _tell_settled(self) -> None:
        if self._settle_waiters and self._settled():
            waiters, self._settle_waiters = self._settle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _make_room(self) -> None:
        if (room := self._room) is not None and self._held < self._max_held:
            self._room = None
            if not room.done():
                room.set_result(None)

    async def _run_pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._reopen:
                try:
                    await self._reopen_producer()
                except KafkaDeliveryError as exc:  # the new producer could not connect
                    self._failure = self._failure or exc
                    self._abandon_queue()
                    return
                continue
            if self._buffer:
                try:
                    await self._gather(self._buffer)
                except KafkaDeliveryError:  # a topic's partitions unreadable for good
                    self._abandon_queue()
                    return
            if self._lanes.waiting:
                await self._hand_over_ready(loop)
            self._make_room()
            if self._buffer or self._woken:
                self._woken = False
                await asyncio.sleep(0)  # let the readers and the sender run between chunks
                continue
            self._tell_settled()
            self._wake = loop.create_future()
            await self._wake

    async def _gather(self, buffer: Buffer) -> None:
        """Append a chunk of the buffer to its partitions' batches."""
        assert self._producer is not None
        due_s = asyncio.get_running_loop().time() + self._linger_s
        if time.monotonic() - self._partitions_learned_s > PARTITIONS_REFRESH_S:
            await self._learn_partitions(self._lanes.topics())
        new_builder = self._producer.create_batch
        while (
            unknown := self._lanes.gather(buffer, CHUNK_RECORDS, new_builder, due_s)
        ) is not None:
            await self._learn_partitions([unknown])

    async def _learn_partitions(self, topics: list[str]) -> None:
        """Read the topics' partitions from the producer's metadata."""
        assert self._producer is not None
        for topic in topics:
            partitions = await self._retrying(
                functools.partial(self._producer.partitions_for, topic)
            )
            if partitions is None:
                raise self._failure or KafkaDeliveryError(f"no partitions for {topic}")
            self._lanes.learn(topic, list(partitions))
        self._partitions_learned_s = time.monotonic()

    async def _hand_over_ready(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand each partition's oldest batch to the producer, unless one is already there or
        it may still grow (neither full nor ``linger_ms`` old: the pump wakes when it is). A
        flush waiting sends what lingers at once."""
        ready, next_due_s = self._lanes.ready(loop.time(), linger=not self._settle_waiters)
        for i, (lane, batch) in enumerate(ready):
            if self._reopen:  # a refusal: the batches not handed over go to the next producer
                for later in ready[i:]:
                    self._lanes.put_back(*later)
                return
            await self._hand_over(batch, lane)
            self._held -= len(batch.records)  # with the producer, or settled: no longer held
        if next_due_s is not None and (self._timer is None or next_due_s < self._timer.when()):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(next_due_s, self._linger_over)

    def _linger_over(self) -> None:
        self._timer = None
        self._notify_pump()

    async def _hand_over(self, batch: Batch, lane: Lane | None) -> None:
        assert self._producer is not None
        batch.builder.close()  # no record joins a batch the sender may already have numbered
        send = functools.partial(
            self._producer.send_batch, batch.builder, batch.topic, partition=batch.partition
        )
        future: asyncio.Future[object] | None = await self._retrying(send, batch)
        if future is None:
            return
        self._in_flight += 1
        if lane is not None:
            lane.busy = True
        future.add_done_callback(functools.partial(self._delivered, batch=batch, lane=lane))

    async def _retrying(
        self, call: Callable[[], Awaitable[_T]], batch: Batch | None = None
    ) -> _T | None:
        """Call the producer; while Kafka is unreachable, wait and call again (None: failed).

        aiokafka waits for the partition's metadata and for room in its queue, and times out
        when no broker answers: an outage, not a bad record. Retrying here, in order, keeps the
        batch and everything behind it; the bounded buffer meanwhile makes the readers wait.
        """
        delays = backoff(initial_s=0.5, max_s=5.0)
        while True:
            try:
                result = await call()
            except KafkaError as exc:
                # KafkaTimeoutError is not flagged retriable, but here it only means no broker
                # answered in time: the outage case.
                self._on_error(type(exc).__name__)
                if batch is not None and isinstance(exc, PER_RECORD_ERRORS):
                    self._settle_refused(batch, exc)
                    return None
                if not (exc.retriable or isinstance(exc, KafkaTimeoutError)):
                    if batch is not None:
                        self._fail(batch.records, exc)
                    else:
                        self._failure = self._failure or KafkaDeliveryError(
                            f"{type(exc).__name__}: {exc}"
                        )
                    return None
                if not self.kafka_unavailable:
                    self.kafka_unavailable = True
                    logger.warning("Kafka unavailable (%s); holding records until it is back", exc)
                await asyncio.sleep(next(delays))
            else:
                if self.kafka_unavailable:
                    self.kafka_unavailable = False
                    logger.warning("Kafka accepts records again")
                return result

    def _abandon_queue(self) -> None:
        """The pump is ending on a failure: what is still held will not be sent. Count it as
        failed and release it, so that flush() raises the failure instead of waiting forever
        (send() refuses new records from now on)."""
        self.stats.failed += self._held + len(self._resend)
        self._held = 0
        self._resend.clear()
        self._buffer.clear()
        self._lanes.drop()
        self._make_room()
        self._tell_settled()

    async def _reopen_producer(self) -> None:
        """Settle the producer whose sequence a refusal broke, then send what it could not on a
        new one, in the order the callbacks reported it (per partition, the send order), before
        the batches that wait in the lanes."""
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
        for i, (record, received_ns, alone) in enumerate(resend):
            if self._reopen:  # refused again: the rest follows what this producer refused
                self._resend.extend(resend[i:])
                return
            await self._resend_one(record, received_ns, alone)
        await self._producer.flush()
        await asyncio.sleep(0)

    async def _resend_one(self, record: ProducerRecord, received_ns: int, alone: bool) -> None:
        """One record in a batch of its own; one sent alone is settled before the next."""
        assert self._producer is not None
        if not self._lanes.knows(record.topic):
            await self._learn_partitions([record.topic])
        lane = self._lanes.lane(record.topic, record.key)
        batch = Batch(self._producer.create_batch(), lane.topic, lane.partition, alone)
        batch.append(record, received_ns)
        await self._hand_over(batch, None)
        if alone:
            await self._producer.flush()
            await asyncio.sleep(0)  # its delivery callback

    def _delivered(
        self, future: asyncio.Future[object], *, batch: Batch, lane: Lane | None
    ) -> None:
        self._in_flight -= 1
        if lane is not None:
            lane.busy = False
            if lane.batches:
                self._notify_pump()
        exc = None if future.cancelled() else future.exception()
        if future.cancelled() or exc is not None:
            self._on_error(type(exc).__name__ if exc is not None else "Cancelled")
            self._settle_refused(batch, exc)
        else:
            records = batch.records
            self.stats.acked += len(records)
            if (on_ack := self._on_ack) is not None:
                now = time.monotonic_ns()
                for record, received_ns in zip(records, batch.times, strict=True):
                    on_ack(record, now - received_ns)
        self._tell_settled()

    def _settle_refused(self, batch: Batch, exc: BaseException | None) -> None:
        """Account for a batch the producer did not deliver, record by record."""
        failed = []
        for record, received_ns in zip(batch.records, batch.times, strict=True):
            if exc is not None and self._reroutable(record, exc):
                # The broker refuses whole batches: a record sent with others is tried again in
                # a batch of its own, and dead-lettered only if refused there too.
                if batch.alone:
                    record = self._refused(record, "kafka", f"{type(exc).__name__}: {exc}")
                self._resend.append((record, received_ns, not batch.alone))
                self._request_reopen()
            elif isinstance(exc, OutOfOrderSequenceNumber) and self._reopen:
                # Behind a refused batch on the same producer: not written, sent again.
                self._resend.append((record, received_ns, batch.alone))
            else:
                failed.append(record)
        if failed:
            self._fail(failed, exc)

    def _request_reopen(self) -> None:
        """The pump reopens the producer before it hands over anything else; wake it now, or a
        refusal with nothing queued behind it would hold its resends (and their dead letters)
        until the next record arrives, which for a quiet topic may be never."""
        if not self._reopen:
            self._reopen = True
            self._notify_pump()

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

    def _fail(self, records: list[ProducerRecord], exc: BaseException | None) -> None:
        # aiokafka already retried retriable errors within the delivery timeout; what reaches
        # here is final, so the data is not in Kafka and the worker must not carry on as if.
        self.stats.failed += len(records)
        if isinstance(exc, MembershipFenced) and self._failure is not None:
            return  # every held batch fails at once: the first one's line says it
        topic = records[0].topic
        logger.error(
            "Kafka refused %d records for %s: %s",
            len(records),
            topic,
            exc,
            extra={"event_data": {"topic": topic}},
        )
        if self._failure is None:
            self._failure = KafkaDeliveryError(f"records for {topic} not delivered: {exc}")


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
