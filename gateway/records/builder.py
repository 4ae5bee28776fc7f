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

from gateway.binance.messages import MarketEvent, RecordEvent
from gateway.errors import SerializationError
from gateway.records import topics
from gateway.records.avro import Framing, SchemaCatalog, SchemaKey, encode
from gateway.records.topics import ProducerRecord, TopicNamer

DEAD_LETTER_SCHEMA = SchemaKey("gateway", topics.DEAD_LETTER_KIND)

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
            decimals=tuple(n for n in names if _holds(hints[n], lambda h: h is Decimal)),
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
    dicts, decimals checked against the schema's precision and scale.

    The field plan (names, which fields are decimals, which nest) comes from the dataclass's
    type hints once per class, so a trade costs one ``attrgetter`` call and two decimal checks.
    """
    return _datum(event)


class RecordBuilder:
    """Turns events (and failures) into :class:`ProducerRecord` values."""

    def __init__(
        self, catalog: SchemaCatalog, framing: Framing, namer: TopicNamer, gateway_id: str
    ) -> None:
        self._catalog = catalog
        self._framing = framing
        self._namer = namer
        self._gateway_id = gateway_id

    def build(self, event: MarketEvent) -> ProducerRecord:
        """The record for one market event; SerializationError if its schema rejects it."""
        key = SchemaKey(event.market, event.KIND)
        if key not in self._catalog:
            raise SerializationError(f"no schema for {key}")
        value = encode(self._catalog[key], self._framing, event_datum(event))
        return ProducerRecord(
            topic=self._namer.topic(event.market, event.KIND),
            key=topics.symbol_key(event.symbol),
            value=value,
            headers=topics.headers(event.KIND, event.received_at_us, self._gateway_id),
            timestamp_ms=event.event_time_us // 1000,
        )

    def dead_letter(
        self,
        *,
        market: str,
        stream: str | None,
        stage: str,
        error: str,
        raw: bytes,
        received_at_us: int,
    ) -> ProducerRecord:
        """A dead-letter record keeping the raw frame and why it failed."""
        datum = {
            "market": market,
            "stream": stream,
            "stage": stage,
            "error": error,
            "raw": raw,
            "received_at_us": received_at_us,
            "gateway_id": self._gateway_id,
        }
        value = encode(self._catalog[DEAD_LETTER_SCHEMA], self._framing, datum)
        return ProducerRecord(
            topic=self._namer.dead_letter_topic(),
            key=stream.encode() if stream else None,
            value=value,
            headers=topics.headers(topics.DEAD_LETTER_KIND, received_at_us, self._gateway_id),
        )
