"""The Kafka sink against a fake producer: outages, refusals and reopenings in seconds (issue 12 item 7).

``KafkaSink`` has no seam for its producer: it builds ``AIOKafkaProducer`` itself
(``_new_producer``), so these tests replace that name in ``gateway.adapters.kafka`` with
:class:`FakeProducer`, as ``tests/unit/adapters/test_kafka_producer.py`` replaces its network
calls. The fake models what the sink relies on, from aiokafka's documented behaviour: ``send``
``send_batch`` returns a future resolved when the batch is acknowledged (here: on the next turn
of the event loop, or on ``release()`` while the broker is held); a refused record refuses its
whole batch, and after the broker
refuses a batch, the idempotent producer's later batches on that producer fail with
``OutOfOrderSequenceNumber`` (no epoch bump, KIP-360). The real broker runs the same cases in
``tests/integration/test_refused_records.py`` and ``test_kafka_refusal.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotEnoughReplicasError,
    OutOfOrderSequenceNumber,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)

import gateway.adapters.kafka as kafka
from gateway.adapters.kafka import KafkaSink, ensure_topics, map_kafka_errors, topic_config
from gateway.adapters.kafka_batches import partition_for
from gateway.errors import KafkaDeliveryError
from gateway.records.topics import DEAD_LETTER_KIND, HEADER_EVENT_KIND, ProducerRecord
from gateway.settings import KafkaSettings
from gateway.topic_catalogue import TopicRole, TopicSpec, topic_config as catalogue_topic_config

SETTINGS = KafkaSettings(bootstrap_servers="fake:9092")
NO_LINGER = KafkaSettings(bootstrap_servers="fake:9092", linger_ms=0)


@dataclass
class Broker:
    """What every fake producer of one test talks to."""

    send_errors: deque[KafkaError] = field(default_factory=deque)
    """Raised by ``send_batch`` itself, one per call, before the batch joins the queue."""
    refuses: Callable[[bytes], KafkaError | None] = lambda value: None
    """The broker's answer to a record (None: acceptable); one refused record refuses its batch."""
    start_errors: deque[KafkaError] = field(default_factory=deque)
    written: list[tuple[int, str, bytes]] = field(default_factory=list)
    batches: list[tuple[str, int, list[bytes]]] = field(default_factory=list)
    """Every batch handed to a producer: topic, partition, values."""
    producers: list[FakeProducer] = field(default_factory=list)
    cancel_next: bool = False
    partitions: int = 3
    batch_records: int = 1000
    """How many records a batch takes before it is full."""
    holding: bool = False
    """While set, batches wait unacknowledged (the broker away); ``release()`` delivers them."""

    def release(self) -> None:
        self.holding = False
        for producer in self.producers:
            producer.deliver()


class FakeBatch:
    """aiokafka's BatchBuilder as the sink uses it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.values: list[bytes] = []
        self.closed = False

    def append(
        self, *, timestamp: int | None, key: bytes | None, value: bytes, headers: object
    ) -> object | None:
        if self.closed or len(self.values) >= self.capacity:
            return None
        self.values.append(value)
        return object()

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """Delivers each batch soon after it is handed over (``linger_ms`` 0), in order."""

    broker: Broker

    def __init__(self, **options: object) -> None:
        self.options = options
        self.id = len(self.broker.producers)
        self.broker.producers.append(self)
        self.pending: list[tuple[asyncio.Future[object], str, list[bytes]]] = []
        self.broken = False  # a refused batch left the sequence numbers off
        self.started = self.stopped = False

    async def start(self) -> None:
        if self.broker.start_errors:
            raise self.broker.start_errors.popleft()
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.broker.partitions))

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.broker.batch_records)

    async def send_batch(
        self, batch: FakeBatch, topic: str, *, partition: int
    ) -> asyncio.Future[object]:
        if self.broker.send_errors:
            raise self.broker.send_errors.popleft()
        assert batch.closed, "a batch handed over must take no more records"
        assert 0 <= partition < self.broker.partitions
        self.broker.batches.append((topic, partition, list(batch.values)))
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.pending.append((future, topic, batch.values))
        asyncio.get_running_loop().call_soon(self.deliver)
        return future

    def deliver(self) -> None:
        if self.broker.holding:
            return
        pending, self.pending = self.pending, []
        for future, topic, values in pending:
            if self.broker.cancel_next:
                self.broker.cancel_next = False
                future.cancel()
            elif self.broken:
                future.set_exception(OutOfOrderSequenceNumber())
            elif (error := next(filter(None, map(self.broker.refuses, values)), None)) is not None:
                self.broken = True
                future.set_exception(error)
            else:
                self.broker.written.extend((self.id, topic, value) for value in values)
                future.set_result(SimpleNamespace(offset=len(self.broker.written)))

    async def flush(self) -> None:
        while self.pending and not self.broker.holding:
            self.deliver()
            await asyncio.sleep(0)


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    b = Broker()
    fake = type("BoundFakeProducer", (FakeProducer,), {"broker": b})
    monkeypatch.setattr(kafka, "AIOKafkaProducer", fake)
    yield b


def record(value: bytes, topic: str = "p.spot.trade") -> ProducerRecord:
    return ProducerRecord(topic, b"BTCUSDT", value, [(HEADER_EVENT_KIND, b"trade")])


def dead_letter(rec: ProducerRecord, stage: str, error: str) -> ProducerRecord:
    return ProducerRecord(
        "p.dead_letter",
        rec.key,
        b"DL:" + rec.value + b":" + stage.encode(),
        [(HEADER_EVENT_KIND, DEAD_LETTER_KIND.encode())],
    )


def values(b: Broker) -> list[bytes]:
    return [value for _, _, value in b.written]


async def test_records_are_acknowledged_in_order_and_stop_flushes(broker: Broker) -> None:
    acks: list[tuple[bytes, int]] = []
    sink = KafkaSink(SETTINGS, on_ack=lambda r, ns: acks.append((r.value, ns)))
    await sink.start()
    producer = broker.producers[0]
    assert producer.options["acks"] == "all" and producer.options["enable_idempotence"] is True
    assert producer.options["compression_type"] == "lz4"
    for i in range(5):
        await sink.send(record(b"%d" % i), received_ns=1)
    await sink.stop()
    assert values(broker) == [b"0", b"1", b"2", b"3", b"4"]
    assert [v for v, _ in acks] == values(broker) and all(ns > 0 for _, ns in acks)
    assert sink.stats.enqueued == sink.stats.acked == 5 and sink.queue_depth == 0
    assert producer.stopped


async def test_no_compression_is_none_for_aiokafka(broker: Broker) -> None:
    sink = KafkaSink(KafkaSettings(compression="none"))
    await sink.start()
    await sink.stop()
    assert broker.producers[0].options["compression_type"] is None


async def test_a_record_over_the_limit_is_dead_lettered_before_the_send(broker: Broker) -> None:
    settings = KafkaSettings(max_record_bytes=300 * 1024)
    sink = KafkaSink(settings)
    await sink.start()
    big = b"x" * (301 * 1024)
    await sink.send(record(big))  # no route yet: sent as it is, the broker judges
    sink.route_refusals(dead_letter)
    await sink.send(record(big))
    await sink.flush()
    await sink.stop()
    assert values(broker) == [big, b"DL:" + big + b":size"]
    assert sink.stats.refused == 1


async def test_an_outage_holds_records_in_order_until_kafka_is_back(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[str] = []
    broker.send_errors.extend([KafkaTimeoutError(), KafkaConnectionError()])
    sink = KafkaSink(SETTINGS, on_error=errors.append)
    await sink.start()
    await sink.send(record(b"a"))
    await sink.send(record(b"b"))
    await asyncio.wait_for(sink.flush(), 10)
    await sink.stop()
    assert values(broker) == [b"a", b"b"]
    assert errors == ["KafkaTimeoutError", "KafkaConnectionError"]
    assert not sink.kafka_unavailable
    assert "Kafka unavailable" in caplog.text and "Kafka accepts records again" in caplog.text


async def test_a_final_error_fails_the_sink_and_every_later_call(broker: Broker) -> None:
    broker.send_errors.append(TopicAuthorizationFailedError())
    sink = KafkaSink(SETTINGS)
    await sink.start()
    await sink.send(record(b"a"))
    with pytest.raises(KafkaDeliveryError, match="not delivered"):
        await sink.flush()
    with pytest.raises(KafkaDeliveryError):
        await sink.send(record(b"b"))
    with pytest.raises(KafkaDeliveryError):
        await sink.stop()
    assert sink.stats.failed == 1 and broker.written == []


async def test_a_record_refused_before_the_send_takes_its_place_as_a_dead_letter(
    broker: Broker,
) -> None:
    # Refused as a batch with b, then alone: only a becomes a dead letter, in its place.
    broker.send_errors.extend([MessageSizeTooLargeError(), MessageSizeTooLargeError()])
    sink = KafkaSink(SETTINGS)
    sink.route_refusals(dead_letter)
    await sink.start()
    await sink.send(record(b"a"))
    await sink.send(record(b"b"))
    await sink.stop()
    assert values(broker) == [b"DL:a:kafka", b"b"]


async def test_a_refused_batch_is_resent_on_a_new_producer_alone_then_dead_lettered(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.refuses = lambda v: RecordTooLargeError() if v == b"bad" else None
    sink = KafkaSink(SETTINGS)
    sink.route_refusals(dead_letter)
    await sink.start()
    for value in (b"1", b"bad", b"3"):
        await sink.send(record(value))
    await asyncio.wait_for(sink.flush(), 10)
    await sink.stop()
    # Nothing lost, nothing twice, the order kept; the bad one stands as its dead letter.
    assert values(broker) == [b"1", b"DL:bad:kafka", b"3"]
    assert sink.stats.refused == 1 and sink.stats.failed == 0
    assert len(broker.producers) >= 2 and all(p.stopped for p in broker.producers)
    assert "reopened the Kafka producer" in caplog.text


async def test_a_refused_record_with_nothing_behind_it_is_not_held(broker: Broker) -> None:
    broker.refuses = lambda v: RecordTooLargeError() if v == b"bad" else None
    sink = KafkaSink(SETTINGS)
    sink.route_refusals(dead_letter)
    await sink.start()
    await sink.send(record(b"bad"))
    await asyncio.wait_for(sink.flush(), 10)
    assert values(broker) == [b"DL:bad:kafka"]
    await sink.stop()


async def test_a_dead_letter_the_broker_refuses_fails_the_sink(broker: Broker) -> None:
    broker.refuses = lambda v: RecordTooLargeError()
    sink = KafkaSink(SETTINGS)
    sink.route_refusals(dead_letter)
    await sink.start()
    await sink.send(record(b"bad"))
    with pytest.raises(KafkaDeliveryError):
        await asyncio.wait_for(sink.flush(), 10)
    assert broker.written == []


async def test_a_final_delivery_error_or_a_cancelled_batch_fails_the_sink(broker: Broker) -> None:
    errors: list[str] = []
    broker.refuses = lambda v: NotEnoughReplicasError()  # final once aiokafka gave up retrying
    sink = KafkaSink(SETTINGS, on_error=errors.append)
    await sink.start()
    await sink.send(record(b"a"))
    with pytest.raises(KafkaDeliveryError, match="NotEnoughReplicas"):
        await sink.flush()

    broker.refuses = lambda v: None
    broker.cancel_next = True
    cancelled = KafkaSink(SETTINGS, on_error=errors.append)
    await cancelled.start()
    await cancelled.send(record(b"b"))
    with pytest.raises(KafkaDeliveryError):
        await cancelled.flush()
    assert errors == ["NotEnoughReplicasError", "Cancelled"]


async def test_a_producer_that_cannot_connect_is_released_and_translated(broker: Broker) -> None:
    broker.start_errors.append(KafkaConnectionError())
    sink = KafkaSink(SETTINGS)
    with pytest.raises(KafkaDeliveryError, match="connecting the producer"):
        await sink.start()
    assert broker.producers[0].stopped


async def reopen_refused(broker: Broker) -> KafkaSink:
    """A sink whose producer must be reopened after a refusal, when no broker answers."""
    broker.refuses = lambda v: RecordTooLargeError() if v == b"bad" else None
    sink = KafkaSink(SETTINGS)
    sink.route_refusals(dead_letter)
    await sink.start()
    broker.start_errors.append(KafkaConnectionError())  # the next producer
    await sink.send(record(b"bad"))
    return sink


async def test_a_reopen_that_cannot_connect_fails_every_later_call(broker: Broker) -> None:
    sink = await reopen_refused(broker)
    with contextlib.suppress(TimeoutError, KafkaDeliveryError):
        await asyncio.wait_for(sink.flush(), 2)  # see the next test
    with pytest.raises(KafkaDeliveryError, match="connecting the producer"):
        await sink.send(record(b"next"))
    with pytest.raises(KafkaDeliveryError, match="connecting the producer"):
        await sink.flush()


async def test_the_flush_that_sees_a_reopen_fail_raises_rather_than_hangs(broker: Broker) -> None:
    sink = await reopen_refused(broker)
    with pytest.raises(KafkaDeliveryError, match="connecting the producer"):
        await asyncio.wait_for(sink.flush(), 3)


async def test_flush_before_start_and_after_stop_has_nothing_to_wait_for(broker: Broker) -> None:
    sink = KafkaSink(SETTINGS)
    await sink.flush()
    await sink.start()
    await sink.stop()
    await sink.flush()
    await sink.stop()


class FakeAdmin:
    calls: list[str]
    codes: dict[str, tuple[int, str | None]]

    def __init__(self, **options: object) -> None:
        self.options = options

    async def start(self) -> None:
        self.calls.append("start")

    async def close(self) -> None:
        self.calls.append("close")

    async def create_topics(self, new_topics: list[object]) -> SimpleNamespace:
        names = [t.name for t in new_topics]  # type: ignore[attr-defined]
        self.calls.extend(names)
        return SimpleNamespace(topic_errors=[(n, *self.codes.get(n, (0, None))) for n in names])


async def test_ensure_topics_creates_what_is_missing_and_leaves_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class admin(FakeAdmin):
        calls: list[str] = []  # noqa: RUF012 - one test's record
        codes: dict[str, tuple[int, str | None]] = {"p.spot.trade": (36, "exists")}  # noqa: RUF012

    monkeypatch.setattr(kafka, "AIOKafkaAdminClient", admin)
    control = TopicSpec(
        "p.control", "control", TopicRole.INTERNAL, 3, 1, {"cleanup.policy": "compact"}
    )
    created = await ensure_topics(SETTINGS, ["p.spot.trade", "p.spot.depth", control])
    assert created == ["p.control", "p.spot.depth"]
    assert admin.calls == ["start", "p.control", "p.spot.depth", "p.spot.trade", "close"]

    admin.codes = {"p.spot.depth": (29, "denied")}
    with pytest.raises(KafkaDeliveryError, match=r"cannot create topic p\.spot\.depth"):
        await ensure_topics(SETTINGS, ["p.spot.depth"])


def test_aiokafka_errors_are_translated_and_topic_config_follows_the_kind() -> None:
    expected = "doing it failed against Kafka at b:1"
    with pytest.raises(KafkaDeliveryError, match=expected), map_kafka_errors("doing it", "b:1"):
        raise KafkaConnectionError()
    assert topic_config(SETTINGS, "p.spot.trade") == catalogue_topic_config(SETTINGS, "trade")


def keyed(value: bytes, key: bytes | None, topic: str = "p.spot.trade") -> ProducerRecord:
    return ProducerRecord(topic, key, value, [(HEADER_EVENT_KIND, b"trade")])


async def test_records_go_to_their_keys_partition_in_one_batch_each_acked_per_record(
    broker: Broker,
) -> None:
    acks: list[tuple[bytes, int]] = []
    sink = KafkaSink(SETTINGS, on_ack=lambda r, ns: acks.append((r.value, ns)))
    await sink.start()
    keys = [f"SYM{i}USDT".encode() for i in range(10)]
    sent = [keyed(b"%d" % i, keys[i % 10], f"p.spot.{'trade' if i % 3 else 'agg'}") for i in range(100)]  # fmt: skip
    for rec in sent:
        await sink.send(rec)  # never waits: the pump gets them all in one chunk
    await sink.flush()
    partition_of = {r.value: partition_for(r.key, [0, 1, 2]) for r in sent}
    lanes = {(r.topic, partition_of[r.value]) for r in sent}
    assert len(broker.batches) == len(lanes)  # one batch per topic partition, not per record
    for topic, partition, batch in broker.batches:
        assert all(partition_of[value] == partition for value in batch)
        assert batch == [r.value for r in sent if (r.topic, partition_of[r.value]) == (topic, partition)]  # fmt: skip
    assert sorted(v for v, _ in acks) == sorted(r.value for r in sent)
    assert all(ns > 0 for _, ns in acks)
    assert sink.stats.acked == sink.stats.enqueued == 100 and sink.queue_depth == 0
    await sink.stop()


async def test_keyless_records_are_sent_too(broker: Broker) -> None:
    sink = KafkaSink(SETTINGS)
    await sink.start()
    for i in range(20):
        await sink.send(keyed(b"%d" % i, None))
    await sink.stop()
    assert sorted(values(broker)) == sorted(b"%d" % i for i in range(20))
    assert {partition for _, partition, _ in broker.batches} <= {0, 1, 2}


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_partition_has_one_batch_with_the_producer_the_next_ones_wait_in_order(
    broker: Broker,
) -> None:
    broker.batch_records = 2
    broker.holding = True  # the first batch stays unacknowledged
    sink = KafkaSink(NO_LINGER)
    await sink.start()
    await sink.send(record(b"0"))
    await settle()
    for i in range(1, 6):
        await sink.send(record(b"%d" % i))
    await settle()
    assert [batch for _, _, batch in broker.batches] == [[b"0"]]
    assert sink.queue_depth == 5  # full batches of 2 wait behind the one with the producer
    broker.release()
    await asyncio.wait_for(sink.flush(), 10)
    assert [batch for _, _, batch in broker.batches] == [[b"0"], [b"1", b"2"], [b"3", b"4"], [b"5"]]  # fmt: skip
    assert values(broker) == [b"%d" % i for i in range(6)]
    assert sink.stats.acked == 6
    await sink.stop()


async def test_records_not_yet_with_the_producer_are_bounded_and_make_readers_wait(
    broker: Broker,
) -> None:
    broker.holding = True
    sink = KafkaSink(KafkaSettings(max_buffered_records=3, linger_ms=0))
    await sink.start()
    await sink.send(record(b"0"))
    await settle()  # handed over, unacknowledged
    for i in range(1, 4):
        await sink.send(record(b"%d" % i))
    blocked = asyncio.create_task(sink.send(record(b"4")))
    await asyncio.sleep(0.05)
    assert not blocked.done() and sink.queue_depth == 3
    broker.release()
    await asyncio.wait_for(blocked, 10)
    await asyncio.wait_for(sink.flush(), 10)
    assert values(broker) == [b"%d" % i for i in range(5)]
    await sink.stop()


async def test_a_refused_batch_goes_first_on_the_new_producer_then_what_waited_behind_it(
    broker: Broker,
) -> None:
    broker.refuses = lambda v: RecordTooLargeError() if v == b"bad" else None
    broker.holding = True
    acks: list[bytes] = []
    sink = KafkaSink(NO_LINGER, on_ack=lambda r, ns: acks.append(r.value))
    sink.route_refusals(dead_letter)
    await sink.start()
    for value in (b"1", b"bad", b"3"):
        await sink.send(record(value))
    await settle()
    for value in (b"4", b"5"):  # wait behind the batch about to be refused
        await sink.send(record(value))
    broker.release()
    await asyncio.wait_for(sink.flush(), 10)
    assert broker.batches[0][2] == [b"1", b"bad", b"3"]
    assert values(broker) == [b"1", b"DL:bad:kafka", b"3", b"4", b"5"]
    assert sorted(acks) == sorted(values(broker))  # each acknowledged once, the refusal as itself
    assert sink.stats.acked == 5 and sink.stats.refused == 1 and sink.stats.failed == 0
    await sink.stop()


async def test_a_final_error_fails_every_record_of_the_batch_once(broker: Broker) -> None:
    errors: list[str] = []
    broker.refuses = lambda v: NotEnoughReplicasError()
    sink = KafkaSink(SETTINGS, on_error=errors.append)
    await sink.start()
    for i in range(4):
        await sink.send(record(b"%d" % i))
    with pytest.raises(KafkaDeliveryError, match="NotEnoughReplicas"):
        await sink.flush()
    assert sink.stats.failed == 4 and errors == ["NotEnoughReplicasError"]  # one batch


async def test_a_batch_lingers_for_more_records_unless_full_or_flushed(broker: Broker) -> None:
    broker.batch_records = 2
    sink = KafkaSink(KafkaSettings(linger_ms=200))
    await sink.start()
    await sink.send(record(b"0"))
    await settle()  # the pump ran: the batch waits for a second record
    assert broker.batches == []
    await sink.send(record(b"1"))
    await sink.send(record(b"2"))  # the first batch is full: it goes without lingering
    await settle()
    assert [batch for _, _, batch in broker.batches] == [[b"0", b"1"]]
    await asyncio.sleep(0.3)  # the second one went when its linger was over
    assert [batch for _, _, batch in broker.batches] == [[b"0", b"1"], [b"2"]]
    await sink.send(record(b"3"))
    await asyncio.wait_for(sink.flush(), 0.1)  # a flush does not wait for the linger
    assert values(broker) == [b"0", b"1", b"2", b"3"]
    await sink.stop()


async def test_a_reader_cancelled_while_it_waits_for_room_stops_neither_the_others_nor_the_pump(
    broker: Broker,
) -> None:
    # A connection closed while its reader waits behind a full buffer (a rotation, a drain):
    # the readers waiting with it still get their turn, and the pump does not trip over the
    # wait it was about to end (it did: InvalidStateError, and every held record was lost).
    broker.holding = True
    sink = KafkaSink(KafkaSettings(max_buffered_records=2, linger_ms=0))
    await sink.start()
    await sink.send(record(b"0"))
    await settle()
    await sink.send(record(b"1"))
    await sink.send(record(b"2"))
    closed = asyncio.create_task(sink.send(record(b"x")))
    waiting = asyncio.create_task(sink.send(record(b"3")))
    await asyncio.sleep(0.05)
    closed.cancel()
    await asyncio.sleep(0)
    broker.release()
    await asyncio.wait_for(waiting, 10)
    await asyncio.wait_for(sink.flush(), 10)
    assert closed.cancelled() and values(broker) == [b"0", b"1", b"2", b"3"]
    await sink.stop()
    assert sink.stats.failed == 0
