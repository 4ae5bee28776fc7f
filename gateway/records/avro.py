"""Avro schemas from ``schemas/`` and the two ways a value is framed on Kafka.

``schemas/<group>/<kind>.avsc`` is the source of truth: one schema per event kind, loaded once.
Values are either in the Confluent wire format (magic 0, 4-byte big-endian schema id from the
registry) or, with no registry, Avro single-object encoding exactly as Apache Avro's specification
writes it (``C3 01`` + the schema's 8-byte CRC-64-AVRO fingerprint, little-endian), so Avro's own
``BinaryMessageDecoder`` reads it. Both carry the Avro binary body with no container header.

Gateways before issue 15 wrote the fingerprint byte-reversed (big-endian); :func:`read_header`
still recognises those values, so topics written then stay readable by the gateway's readers.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import orjson
from fastavro.schema import fingerprint, to_parsing_canonical_form

from gateway.errors import SerializationError
from gateway.records.codec import Writer, compile_writer

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

CONFLUENT_MAGIC = b"\x00"
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
_CONFLUENT_HEADER = struct.Struct(">bI")


@dataclass(frozen=True, slots=True)
class SchemaKey:
    """Which schema: the folder (a market, or ``gateway``) and the event kind."""

    group: str
    kind: str

    def __str__(self) -> str:
        return f"{self.group}/{self.kind}"


@dataclass(frozen=True, slots=True)
class AvroSchema:
    """One loaded schema: its text (as registered), parsed form and fingerprint."""

    key: SchemaKey
    full_name: str
    text: str
    parsed: Any
    fingerprint: bytes
    """CRC-64-AVRO of the parsing canonical form, little-endian: the single-object header's."""
    writer: Writer

    @classmethod
    def from_text(cls, key: SchemaKey, text: str) -> AvroSchema:
        """Parse, fingerprint and compile a schema; one fastavro rejects fails loudly."""
        raw = orjson.loads(text)
        parsed = fastavro.parse_schema(raw)
        # fastavro's hex string is the 64-bit value's little-endian bytes, the order Avro writes.
        digest = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
        # The registry stores the compact form; registering it keeps ids stable across edits
        # that only touch whitespace.
        compact = orjson.dumps(raw).decode()
        full_name = f"{raw.get('namespace', '')}.{raw['name']}".lstrip(".")
        return cls(key, full_name, compact, parsed, digest, compile_writer(parsed))


class SchemaCatalog:
    """Every schema under a directory, loaded and parsed once."""

    def __init__(self, schemas: Mapping[SchemaKey, AvroSchema]) -> None:
        self._schemas = dict(schemas)
        self._by_fingerprint = {s.fingerprint: s for s in schemas.values()}

    @classmethod
    def load(cls, directory: Path = SCHEMAS_DIR) -> SchemaCatalog:
        """Load ``directory/<group>/<kind>.avsc``; a schema fastavro rejects fails loudly."""
        schemas: dict[SchemaKey, AvroSchema] = {}
        for path in sorted(directory.glob("*/*.avsc")):
            key = SchemaKey(path.parent.name, path.stem)
            schemas[key] = AvroSchema.from_text(key, path.read_text())
        return cls(schemas)

    def __getitem__(self, key: SchemaKey) -> AvroSchema:
        return self._schemas[key]

    def __contains__(self, key: object) -> bool:
        return key in self._schemas

    def __iter__(self) -> Any:
        return iter(self._schemas.values())

    def __len__(self) -> int:
        return len(self._schemas)

    def by_fingerprint(self, digest: bytes) -> AvroSchema | None:
        """The schema with this little-endian fingerprint, or with its byte-reversed form (what
        gateways before issue 15 wrote), or None."""
        return self._by_fingerprint.get(digest) or self._by_fingerprint.get(digest[::-1])


class Framing:
    """How a value's schema is identified on the wire."""

    def header(self, schema: AvroSchema) -> bytes:
        raise NotImplementedError


class SingleObjectFraming(Framing):
    """Avro single-object encoding: self-describing without a registry."""

    def header(self, schema: AvroSchema) -> bytes:
        return SINGLE_OBJECT_MAGIC + schema.fingerprint


class ConfluentFraming(Framing):
    """Confluent wire format v0 with the ids the registry assigned."""

    def __init__(self, schema_ids: Mapping[SchemaKey, int]) -> None:
        self._headers = {key: _CONFLUENT_HEADER.pack(0, sid) for key, sid in schema_ids.items()}

    def header(self, schema: AvroSchema) -> bytes:
        try:
            return self._headers[schema.key]
        except KeyError:
            raise SerializationError(f"schema {schema.key} is not registered") from None


def encode(schema: AvroSchema, framing: Framing, datum: Any) -> bytes:
    """Frame and encode one datum (an event or a dict); one the schema rejects raises
    SerializationError."""
    out = bytearray(framing.header(schema))
    try:
        schema.writer(out, datum)
    except SerializationError as exc:
        raise SerializationError(f"{schema.full_name}: {exc}") from exc
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise SerializationError(f"{schema.full_name}: {type(exc).__name__}: {exc}") from exc
    return bytes(out)


@dataclass(frozen=True, slots=True)
class WireHeader:
    """What identifies a value's writer schema: a registry id or a fingerprint."""

    schema_id: int | None
    fingerprint: bytes | None
    body_offset: int


def read_header(value: bytes) -> WireHeader:
    """Recognise either framing; anything else is not one of our values."""
    if value[:1] == CONFLUENT_MAGIC and len(value) >= _CONFLUENT_HEADER.size:
        _, schema_id = _CONFLUENT_HEADER.unpack_from(value)
        return WireHeader(schema_id, None, _CONFLUENT_HEADER.size)
    if value[:2] == SINGLE_OBJECT_MAGIC and len(value) >= 10:
        return WireHeader(None, value[2:10], 10)
    raise SerializationError("value is neither Confluent-framed nor Avro single-object encoded")


def decode(value: bytes, header: WireHeader, writer: AvroSchema) -> dict[str, Any]:
    """Decode the body of a framed value with its writer schema."""
    record = fastavro.schemaless_reader(
        io.BytesIO(value[header.body_offset :]), writer.parsed, None
    )
    if not isinstance(record, dict):
        raise SerializationError(f"{writer.full_name} is not a record schema")
    return record
