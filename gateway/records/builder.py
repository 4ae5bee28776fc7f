"""Events in, Kafka records out: the Avro value, the topic, the key and the headers.

Record field names equal the event dataclasses' field names, so one generic mapping serves every
event kind; a test checks each schema against its dataclass.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import Any

from gateway.binance.events.base import Scaled, as_decimal
from gateway.binance.messages import RecordEvent
from gateway.errors import SerializationError
from gateway.records import topics
from gateway.records.avro import AvroSchema, Framing, SchemaCatalog, SchemaKey, encode
from gateway.records.topics import ProducerRecord, TopicNamer

DEAD_LETTER_SCHEMA = SchemaKey("gateway", topics.DEAD_LETTER_KIND)
MAX_DEAD_LETTER_BYTES = 256 * 1024
MAX_ERROR_CHARS = 2000  # errors quote the bad value, which can be as large as the frame
TRADE_GAP_SCHEMA = SchemaKey(topics.GATEWAY_GROUP, topics.TRADE_GAP_KIND)
STREAM_STATUS_SCHEMA = SchemaKey(topics.GATEWAY_GROUP, topics.STREAM_STATUS_KIND)

# Schemas declare decimals as precision 38, scale 18: 20 integer digits, 18 fractional.
DECIMAL_SCALE = 18
DECIMAL_INTEGER_DIGITS = 20


@dataclass(frozen=True, slots=True)
class _DatumPlan:
    """How to turn one dataclass into a datum, worked out once per class from its type hints."""

    names: tuple[str, ...]
    values: Callable[[Any], tuple[Any, ...]]
    decimals: tuple[str, ...]
    nested: tuple[str, ...]


_PLANS: dict[type, _DatumPlan] = {}


def _holds(hint: Any, wanted: Callable[[Any], bool]) -> bool:
    """Whether a type hint is ``wanted`` itself, optionally, or as the items of a sequence."""
    if wanted(hint):
        return True
    return any(_holds(arg, wanted) for arg in typing.get_args(hint))


def _plan(cls: type) -> _DatumPlan:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        names = tuple(f.name for f in dataclasses.fields(cls))
        getter = attrgetter(*names)
        plan = _PLANS[cls] = _DatumPlan(
            names=names,
            values=getter if len(names) > 1 else lambda value: (getter(value),),
            decimals=tuple(
                n for n in names if _holds(hints[n], lambda h: h is Decimal or h is Scaled)
            ),
            nested=tuple(n for n in names if _holds(hints[n], dataclasses.is_dataclass)),
        )
    return plan


def _check_decimal(name: str, value: Decimal) -> None:
    # fastavro rejects too many fractional digits but not too many integer digits; both would
    # make the value inexact for a consumer, so refuse both here.
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -DECIMAL_SCALE:
        raise SerializationError(f"{name}={value} has more than {DECIMAL_SCALE} decimals")
    if value.adjusted() >= DECIMAL_INTEGER_DIGITS:
        raise SerializationError(f"{name}={value} exceeds {DECIMAL_INTEGER_DIGITS} integer digits")


def _datum(value: Any) -> dict[str, Any]:
    plan = _plan(type(value))
    datum = dict(zip(plan.names, plan.values(value), strict=True))
    for name in plan.decimals:
        number = datum[name]
        if type(number) is int:  # a Scaled value: fastavro writes decimals from Decimal only
            number = datum[name] = as_decimal(Scaled(number))
        if number is not None:
            _check_decimal(name, number)
    for name in plan.nested:
        inner = datum[name]
        if isinstance(inner, list | tuple):
            datum[name] = [_datum(item) for item in inner]
        elif inner is not None:
            datum[name] = _datum(inner)
    return datum


def event_datum(event: RecordEvent) -> dict[str, Any]:
    """The Avro datum of an event: its fields by name, nested records and lists of them as
    dicts, decimals (``Decimal`` or ``Scaled``) as ``Decimal`` checked against the schema's
    precision and scale: what fastavro, the reference writer, takes.

    The field plan (names, which fields are decimals, which nest) comes from the dataclass's
    type hints once per class, so a trade costs one ``attrgetter`` call and two decimal checks.
    """
    return _datum(event)


@dataclass(frozen=True, slots=True)
class _Route:
    """Everything about an event class's records that does not change from one to the next."""

    schema: AvroSchema
    frame_header: bytes
    topic: str
    kind_header: tuple[str, bytes]


class RecordBuilder:
    """Turns events (and failures) into :class:`ProducerRecord` values."""

    def __init__(
        self, catalog: SchemaCatalog, framing: Framing, namer: TopicNamer, gateway_id: str
    ) -> None:
        self._catalog = catalog
        self._framing = framing
        self._namer = namer
        self._gateway_id = gateway_id
        self._gateway_header = (topics.HEADER_GATEWAY_ID, gateway_id.encode())
        self._routes: dict[tuple[type, str], _Route] = {}

    def build(
        self, event: RecordEvent, *, topic: str | None = None, key: bytes | None = None
    ) -> ProducerRecord:
        """The record for one event; SerializationError if its schema rejects it.

        ``topic`` and ``key`` address it where its kind's topic and the event's partition key do
        not (an account's records all go to the account's topic), so a record is born on its
        topic rather than re-addressed afterwards. The compiled writer reads the event's attributes directly (no intermediate dict), and
        the schema, topic and constant headers are looked up once per event class and group.
        """
        route = self._routes.get((type(event), event.schema_group))
        if route is None:
            route = self._route(event)
        out = bytearray(route.frame_header)
        try:
            route.schema.writer(out, event)
        except SerializationError as exc:
            raise SerializationError(f"{route.schema.full_name}: {exc}") from exc
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise SerializationError(
                f"{route.schema.full_name}: {type(exc).__name__}: {exc}"
            ) from exc
        return ProducerRecord(
            topic=route.topic if topic is None else topic,
            key=event.partition_key.encode() if key is None else key,
            value=bytes(out),
            headers=[
                route.kind_header,
                (topics.HEADER_RECEIVED_AT_US, str(event.received_at_us).encode()),
                self._gateway_header,
            ],
            timestamp_ms=event.received_at_us // 1000,
            event_time_ms=event.record_time_us // 1000,
        )

    def _route(self, event: RecordEvent) -> _Route:
        key = SchemaKey(event.schema_group, event.KIND)
        if key not in self._catalog:
            raise SerializationError(f"no schema for {key}")
        schema = self._catalog[key]
        route = _Route(
            schema=schema,
            frame_header=self._framing.header(schema),
            topic=self._namer.topic(event.schema_group, event.KIND),
            kind_header=(topics.HEADER_EVENT_KIND, event.KIND.encode()),
        )
        self._routes[(type(event), event.schema_group)] = route
        return route

    def dead_letter(
        self,
        *,
        market: str,
        stream: str | None,
        stage: str,
        error: str,
        raw: bytes,
        received_at_us: int,
        topic: str | None = None,
        key: bytes | None = None,
    ) -> ProducerRecord:
        """A dead-letter record keeping the raw frame and why it failed.

        In the shared dead-letter topic, keyed by stream, unless ``topic`` and ``key`` say
        otherwise (an account's raw frames stay in the account's own topic).
        """
        datum = {
            "market": market,
            "stream": stream,
            "stage": stage,
            "error": error[:MAX_ERROR_CHARS],
            # Cut: a record over Kafka's message size would be refused and stop the gateway.
            "raw": raw[:MAX_DEAD_LETTER_BYTES],
            "raw_size": len(raw),
            "received_at_us": received_at_us,
            "gateway_id": self._gateway_id,
        }
        value = encode(self._catalog[DEAD_LETTER_SCHEMA], self._framing, datum)
        if topic is None:
            topic, key = self._namer.dead_letter_topic(), stream.encode() if stream else None
        return ProducerRecord(
            topic=topic,
            key=key,
            value=value,
            headers=topics.headers(topics.DEAD_LETTER_KIND, received_at_us, self._gateway_id),
        )

    def refused(self, record: ProducerRecord, stage: str, error: str) -> ProducerRecord:
        """A dead letter for a record that cannot go to its topic (too large, refused by Kafka).

        There is no frame at this point, so ``raw`` keeps the record's value (cut like a frame),
        ``stream`` names the topic, and ``market`` is the topic's middle part.
        """
        received_at_us = next(
            (
                int(v)
                for n, v in record.headers
                if n == topics.HEADER_RECEIVED_AT_US and v.isdigit()
            ),
            record.timestamp_ms * 1000 if record.timestamp_ms is not None else 0,
        )
        parts = record.topic.split(".")
        return self.dead_letter(
            market=parts[-2] if len(parts) >= 3 else topics.GATEWAY_GROUP,
            stream=record.topic,
            stage=stage,
            error=error,
            raw=record.value,
            received_at_us=received_at_us,
        )

    def trade_gap(
        self,
        *,
        market: str,
        symbol: str,
        kind: str,
        first_missing_id: int,
        last_missing_id: int,
        detected_at_us: int,
    ) -> ProducerRecord:
        """A gap record: ids of one symbol that can no longer be recovered."""
        datum = {
            "market": market,
            "symbol": symbol,
            "kind": kind,
            "first_missing_id": first_missing_id,
            "last_missing_id": last_missing_id,
            "detected_at_us": detected_at_us,
            "gateway_id": self._gateway_id,
        }
        value = encode(self._catalog[TRADE_GAP_SCHEMA], self._framing, datum)
        return ProducerRecord(
            topic=self._namer.gateway_topic(topics.TRADE_GAP_KIND),
            key=topics.symbol_key(symbol),
            value=value,
            headers=topics.headers(TRADE_GAP_SCHEMA.kind, detected_at_us, self._gateway_id),
        )

    def stream_status(
        self,
        *,
        market: str,
        stream: str,
        symbol: str | None,
        status: str,
        detected_at_us: int,
        window_start_us: int | None = None,
        window_end_us: int | None = None,
        expected_silence_ms: int | None = None,
        reason: str = "",
        recovered: bool | None = None,
    ) -> ProducerRecord:
        """A stream's silence, resumption or hole (``<prefix>.stream_status``); ``recovered``:
        whether a hole's events were fetched from REST (None: not a kind REST serves)."""
        datum = {
            "market": market,
            "stream": stream,
            "symbol": symbol,
            "status": status,
            "window_start_us": window_start_us,
            "window_end_us": window_end_us,
            "expected_silence_ms": expected_silence_ms,
            "reason": reason,
            "detected_at_us": detected_at_us,
            "gateway_id": self._gateway_id,
            "recovered": recovered,
        }
        value = encode(self._catalog[STREAM_STATUS_SCHEMA], self._framing, datum)
        return ProducerRecord(
            topic=self._namer.gateway_topic(topics.STREAM_STATUS_KIND),
            key=(symbol or stream).encode(),
            value=value,
            headers=topics.headers(STREAM_STATUS_SCHEMA.kind, detected_at_us, self._gateway_id),
        )
