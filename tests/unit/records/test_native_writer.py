"""The compiled record writer writes exactly the Python writer's bytes, and fails where it fails,
for odd values field by field (random data of every schema: tests/unit/records/test_codec.py)."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.records import codec
from gateway.records.codec import compile_writer
from tests.unit.records.test_codec import written


def test_the_compiled_writer_is_built() -> None:
    # make install builds it; without it the gateway runs, at about twice the CPU per record.
    assert codec.NATIVE, "gateway.records.native_writer is not built: run make install"


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
