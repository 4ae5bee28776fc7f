"""The compiled writer writes exactly fastavro's bytes, for random data of every schema."""

from __future__ import annotations

import io
from decimal import Context, Decimal
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings, strategies as st

from gateway.errors import SerializationError
from gateway.records.avro import AvroSchema, SchemaCatalog
from gateway.records.codec import compile_writer, write_long

CATALOG = SchemaCatalog.load()
LONGS = st.integers(-(2**63), 2**63 - 1)


def data_for(schema: Any) -> st.SearchStrategy[Any]:
    """Random data valid for a parsed Avro schema."""
    if isinstance(schema, list):
        return st.one_of([data_for(branch) for branch in schema])
    if isinstance(schema, str):
        schema = {"type": schema}
    kind, logical = schema["type"], schema.get("logicalType")
    if logical == "decimal":
        digits, scale = schema["precision"], schema.get("scale", 0)
        # From the unscaled integer, exactly: Decimal arithmetic in the default context (and so
        # st.decimals) rounds at 28 digits, and these have up to 38.
        exact = Context(prec=digits + scale + 2)
        bound = 10**digits - 1
        return st.integers(-bound, bound).map(lambda n: Decimal(n).scaleb(-scale, exact))
    if logical and logical.startswith("timestamp"):
        return st.integers(0, 2**53)
    if kind == "record":
        fields = {f["name"]: data_for(f["type"]) for f in schema["fields"]}
        return st.fixed_dictionaries(fields)
    if kind == "array":
        return st.lists(data_for(schema["items"]), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=4), data_for(schema["values"]), max_size=3)
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": LONGS,
        "string": st.text(max_size=8),
        "bytes": st.binary(max_size=8),
    }[kind]


def fastavro_bytes(schema: Any, datum: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, datum)
    return buffer.getvalue()


@pytest.mark.parametrize("schema", list(CATALOG), ids=lambda s: str(s.key))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_schema_writes_exactly_what_fastavro_writes(
    schema: AvroSchema, data: st.DataObject
) -> None:
    datum = data.draw(data_for(schema.parsed))
    out = bytearray()
    schema.writer(out, datum)
    assert bytes(out) == fastavro_bytes(schema.parsed, datum)


@given(LONGS)
def test_longs_match_fastavro(value: int) -> None:
    out = bytearray()
    write_long(out, value)
    assert bytes(out) == fastavro_bytes("long", value)


def test_decimals_outside_the_declared_precision_or_scale_are_refused() -> None:
    write = compile_writer({"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2})
    out = bytearray()
    write(out, Decimal("9999.99"))
    for bad in ("0.001", "10000.00", "NaN", "-Infinity"):
        with pytest.raises(SerializationError):
            write(bytearray(), Decimal(bad))


def test_unsupported_types_fail_at_compile_time() -> None:
    with pytest.raises(SerializationError):
        compile_writer({"type": "fixed", "size": 4, "name": "F"})
    with pytest.raises(SerializationError):
        compile_writer("some.NamedType")


def test_general_unions_pick_the_branch_by_type() -> None:
    schema = fastavro.parse_schema(["null", "long", "string"])
    write = compile_writer(schema)
    for value in (None, 5, "x"):
        out = bytearray()
        write(out, value)
        assert bytes(out) == fastavro_bytes(schema, value)
    with pytest.raises(SerializationError):
        write(bytearray(), 1.5)
