"""The compiled writer writes exactly fastavro's bytes, for random data of every schema: from
dicts, and from objects as events are (the compiled module and its Python twin)."""

from __future__ import annotations

import io
from decimal import Context, Decimal
from types import SimpleNamespace
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings, strategies as st

from gateway.binance.events.base import Scaled
from gateway.errors import SerializationError
from gateway.records.avro import AvroSchema, SchemaCatalog
from gateway.records.codec import Writer, compile_writer, write_long

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


def as_objects(schema: Any, datum: Any) -> Any:
    """``datum`` with each record a plain object (attributes, as events are), not a dict."""
    if isinstance(schema, list):
        for branch in schema:
            if branch == "null" and datum is None:
                return None
            nested = isinstance(branch, dict) and branch.get("type") in ("record", "array")
            if nested and isinstance(datum, dict | list):
                return as_objects(branch, datum)
        return datum
    if isinstance(schema, dict) and schema.get("type") == "record":
        fields = {f["name"]: as_objects(f["type"], datum[f["name"]]) for f in schema["fields"]}
        return SimpleNamespace(**fields)
    if isinstance(schema, dict) and schema.get("type") == "array":
        return [as_objects(schema["items"], item) for item in datum]
    return datum


EXACT = Context(prec=60)  # the default context would round a 38-digit value at 28 digits


def as_scaled(value: Any) -> Any:
    """Decimals as the gateway's events hold them: Scaled integers at scale 18."""
    if isinstance(value, Decimal):
        return Scaled(int(value.scaleb(18, EXACT)))
    if isinstance(value, SimpleNamespace):
        return SimpleNamespace(**{k: as_scaled(v) for k, v in vars(value).items()})
    if isinstance(value, list):
        return [as_scaled(item) for item in value]
    return value


def written(write: Writer, value: Any) -> bytes | str:
    out = bytearray()
    try:
        write(out, value)
    except Exception as exc:  # noqa: BLE001 - the two writers must fail alike
        return f"{type(exc).__name__}: {exc}"
    return bytes(out)


NATIVE_WRITERS = {s.key: compile_writer(s.parsed, native=True) for s in CATALOG}
PYTHON_WRITERS = {s.key: compile_writer(s.parsed, native=False) for s in CATALOG}


@pytest.mark.parametrize("schema", list(CATALOG), ids=lambda s: str(s.key))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_schema_writes_exactly_what_fastavro_writes(
    schema: AvroSchema, data: st.DataObject
) -> None:
    datum = data.draw(data_for(schema.parsed))
    expected = fastavro_bytes(schema.parsed, datum)
    assert written(schema.writer, datum) == expected  # a dict (dead letters, gap records)
    # Events: objects, with decimals as Scaled integers; the compiled writer and its Python twin.
    objects = as_objects(schema.parsed, datum)
    for value in (objects, as_scaled(objects)):
        assert written(NATIVE_WRITERS[schema.key], value) == expected
        assert written(PYTHON_WRITERS[schema.key], value) == expected


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
