"""Record values back to dicts, whichever way they were framed: shared by every Kafka reader.

A value is either Confluent-framed (a registry id, whose schema is fetched once and cached) or
Avro single-object encoded (a fingerprint, looked up in ``schemas/``). Readers of the gateway's own
topics (``RecordReader`` for consumers and tools, ``LastIdReader`` when a worker takes symbols
over) decode the same way, so the logic lives here once.
"""

from __future__ import annotations

from typing import Any

from gateway.adapters.registry import SchemaRegistryClient
from gateway.errors import SerializationError
from gateway.records.avro import (
    AvroSchema,
    SchemaCatalog,
    SchemaKey,
    WireHeader,
    decode,
    read_header,
)


class ValueDecoder:
    """Decodes framed Avro values with their writer schema; the registry is optional.

    ``registry`` is an entered :class:`SchemaRegistryClient` (its owner opens and closes it);
    without one, registry-framed values raise :class:`SerializationError`.
    """

    def __init__(
        self, catalog: SchemaCatalog | None = None, registry: SchemaRegistryClient | None = None
    ) -> None:
        self._catalog = catalog or SchemaCatalog.load()
        self._registry = registry
        self._by_id: dict[int, AvroSchema] = {}

    async def decode(self, value: bytes) -> dict[str, Any]:
        """The record a value holds; SerializationError if it is not one of ours."""
        header = read_header(value)
        return decode(value, header, await self._writer_schema(header))

    async def _writer_schema(self, header: WireHeader) -> AvroSchema:
        if header.fingerprint is not None:
            schema = self._catalog.by_fingerprint(header.fingerprint)
            if schema is None:
                raise SerializationError(f"unknown schema fingerprint {header.fingerprint.hex()}")
            return schema
        assert header.schema_id is not None
        if header.schema_id not in self._by_id:
            if self._registry is None:
                raise SerializationError("value is registry-framed but no registry URL was given")
            text = await self._registry.schema_by_id(header.schema_id)
            key = SchemaKey("registry", str(header.schema_id))
            self._by_id[header.schema_id] = AvroSchema.from_text(key, text)
        return self._by_id[header.schema_id]
