"""The compiled record writer writes exactly the Python writer's bytes (and so fastavro's), and
fails where it fails, for records read from objects (events), as the gateway writes them."""

from __future__ import annotations

from decimal import Context, Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from gateway.binance.events.base import Scaled
from gateway.records import codec
from gateway.records.avro import AvroSchema
from gateway.records.codec import compile_writer
from tests.unit.records.test_codec import CATALOG, data_for, fastavro_bytes


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


def written(write: codec.Writer, value: Any) -> bytes | str:
    out = bytearray()
    try:
        write(out, value)
    except Exception as exc:  # noqa: BLE001 - the two writers must fail alike
        return f"{type(exc).__name__}: {exc}"
    return bytes(out)


def test_the_compiled_writer_is_built() -> None:
    # make install builds it; without it the gateway runs, at about twice the CPU per record.
    assert codec.NATIVE, "gateway.records.native_writer is not built: run make install"


NATIVE_WRITERS = {s.key: compile_writer(s.parsed, native=True) for s in CATALOG}
PYTHON_WRITERS = {s.key: compile_writer(s.parsed, native=False) for s in CATALOG}


@pytest.mark.parametrize("schema", list(CATALOG), ids=lambda s: str(s.key))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_schema_from_objects_writes_exactly_what_fastavro_writes(
    schema: AvroSchema, data: st.DataObject
) -> None:
    datum = data.draw(data_for(schema.parsed))
    expected = fastavro_bytes(schema.parsed, datum)
    objects = as_objects(schema.parsed, datum)
    for value in (objects, as_scaled(objects)):
        assert written(NATIVE_WRITERS[schema.key], value) == expected
        assert written(PYTHON_WRITERS[schema.key], value) == expected


FIELDS = [
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"},
    {"name": "flag", "type": ["null", "boolean"]},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 18}},
    {"name": "maybe", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 18}]},
    {"name": "extra", "type": {"type": "map", "values": "string"}},
]  # fmt: skip
RECORD = {"type": "record", "name": "R", "fields": FIELDS}
ODD_VALUES: dict[str, list[Any]] = {
    "id": [0, -1, 2**63 - 1, -(2**63), 2**63, -(2**64), True, False, 1.5, "7", None],
    "name": ["", "é", "x" * 300, "\ud800", b"bytes", 5, None],
    "flag": [None, True, False, 0, 1, "", "yes"],
    "price": [0, -1, 1, 127, 128, -128, -129, 2**64, -(2**64), 10**38 - 1, -(10**38) + 1,
              10**38, -(10**38), 2**127, 2**200, Decimal("1.5"), Decimal("1e-19"), 1.5, None],
    "maybe": [None, 0, 2**100, 10**38, Decimal("-2.25"), "1"],
    "extra": [{}, {"a": "b"}, {"a": 1}, None],
}  # fmt: skip


@pytest.mark.parametrize("field", list(ODD_VALUES))
def test_odd_values_give_the_python_writers_bytes_or_error(field: str) -> None:
    native, python = (compile_writer(RECORD, native=n) for n in (True, False))
    normal = {"id": 1, "name": "BTCUSDT", "flag": True, "price": 5, "maybe": None, "extra": {}}
    for odd in ODD_VALUES[field]:
        value = SimpleNamespace(**{**normal, field: odd})
        assert written(native, value) == written(python, value), (field, odd)


def test_a_missing_attribute_fails_alike() -> None:
    native, python = (compile_writer(RECORD, native=n) for n in (True, False))
    value = SimpleNamespace(id=1, name="x")
    assert written(native, value) == written(python, value)
    assert str(written(native, value)).startswith("AttributeError")
