"""Single-object encoding exactly as Apache Avro's specification writes it.

The fingerprint is computed here with the specification's own CRC-64-AVRO algorithm (the Java
snippet under "Schema Fingerprints"), not with fastavro, so a byte-order mistake shared by the
gateway's writer and reader cannot pass: the header must hold the 64-bit value little-endian, as
Avro's ``BinaryMessageEncoder`` writes it.
"""

from __future__ import annotations

import struct

import pytest
from fastavro.schema import to_parsing_canonical_form

from gateway.errors import SerializationError
from gateway.records.avro import (
    SINGLE_OBJECT_MAGIC,
    AvroSchema,
    SchemaCatalog,
    SchemaKey,
    SingleObjectFraming,
    read_header,
)

CATALOG = SchemaCatalog.load()
EMPTY = 0xC15D213AA4D7A795  # the specification's EMPTY64


def _table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp)
    return table


TABLE = _table()


def fingerprint64(text: str) -> int:
    fp = EMPTY
    for byte in text.encode():
        fp = (fp >> 8) ^ TABLE[(fp ^ byte) & 0xFF]
    return fp


def test_the_reference_algorithm_matches_avros_published_value() -> None:
    # Pinned so that an edit of the reference cannot drift with the code under test; that Apache
    # Avro agrees is shown by its own BinaryMessageDecoder (tests/integration/test_standard_readers).
    assert fingerprint64('"int"') == 0x7275D51A3F395C8F


@pytest.mark.parametrize("schema", list(CATALOG), ids=str)
def test_header_is_magic_then_the_fingerprint_little_endian(schema: AvroSchema) -> None:
    expected = struct.pack("<Q", fingerprint64(to_parsing_canonical_form(schema.parsed)))
    header = SingleObjectFraming().header(schema)
    assert header == SINGLE_OBJECT_MAGIC + expected
    assert read_header(header + b"\x00").fingerprint == expected
    assert CATALOG.by_fingerprint(expected) is schema


def test_values_written_with_the_old_reversed_fingerprint_are_still_read() -> None:
    schema = CATALOG[SchemaKey("spot", "trade")]
    legacy = SINGLE_OBJECT_MAGIC + schema.fingerprint[::-1] + b"\x00"
    header = read_header(legacy)
    assert header.fingerprint is not None
    assert (header.body_offset, CATALOG.by_fingerprint(header.fingerprint)) == (10, schema)


def test_an_unknown_fingerprint_is_none_and_a_short_value_is_refused() -> None:
    assert CATALOG.by_fingerprint(b"\x01" * 8) is None
    with pytest.raises(SerializationError):
        read_header(SINGLE_OBJECT_MAGIC + b"\x01\x02")
