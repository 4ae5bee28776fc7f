"""An event through the gateway's Avro encoding and back, as a consumer reads it."""

from __future__ import annotations

from typing import Any

from gateway.binance.events.catalog import RecordEvent
from gateway.records.avro import (
    SchemaCatalog,
    SchemaKey,
    SingleObjectFraming,
    decode,
    encode,
    read_header,
)
from gateway.records.builder import event_datum

CATALOG = SchemaCatalog.load()


def encoded(event: RecordEvent) -> bytes:
    """The event in its own market's schema, single-object framed. The compiled writer writes
    the same bytes from the event itself as from its datum."""
    schema = CATALOG[SchemaKey(event.schema_group, event.KIND)]
    value = encode(schema, SingleObjectFraming(), event_datum(event))
    assert encode(schema, SingleObjectFraming(), event) == value
    return value


def roundtrip(event: RecordEvent) -> dict[str, Any]:
    """Encode as the gateway does, decode with the schema the header names."""
    value = encoded(event)
    header = read_header(value)
    assert header.fingerprint is not None
    schema = CATALOG.by_fingerprint(header.fingerprint)
    assert schema is CATALOG[SchemaKey(event.schema_group, event.KIND)]
    return decode(value, header, schema)
