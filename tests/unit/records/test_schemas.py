"""Every schema in schemas/ against the event classes it describes."""

import dataclasses
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest

from gateway.binance.messages import RECORD_CLASSES
from gateway.records.avro import SCHEMAS_DIR, SchemaCatalog, SchemaKey

CATALOG = SchemaCatalog.load()
EVENT_SCHEMAS = {
    SchemaKey(group, cls.KIND): cls for group, classes in RECORD_CLASSES.items() for cls in classes
}
DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 18}


def test_every_event_class_has_a_schema_and_every_schema_an_event_class() -> None:
    event_keys = set(EVENT_SCHEMAS)
    schema_keys = {schema.key for schema in CATALOG if schema.key.group != "gateway"}
    assert event_keys - schema_keys == set(), "event kinds without a schema"
    assert schema_keys - event_keys == set(), "schemas no parser produces"


@pytest.mark.parametrize("path", sorted(SCHEMAS_DIR.glob("*/*.avsc")), ids=str)
def test_every_schema_parses_and_has_no_floats(path: Path) -> None:
    raw = orjson.loads(path.read_bytes())
    fastavro.parse_schema(raw)
    text = path.read_text()
    assert '"float"' not in text
    assert '"double"' not in text


def walk_fields(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every field of a record schema and of the records nested in it."""
    for field in schema["fields"]:
        yield field
        for nested in nested_records(field["type"]):
            yield from walk_fields(nested)


def nested_records(avro_type: Any) -> Iterator[dict[str, Any]]:
    if isinstance(avro_type, list):
        for branch in avro_type:
            yield from nested_records(branch)
    elif isinstance(avro_type, dict):
        if avro_type["type"] == "record":
            yield avro_type
        elif avro_type["type"] == "array":
            yield from nested_records(avro_type["items"])


def nested_class(hint: object) -> type | None:
    """The dataclass a field's type hint holds (itself, optionally, or as list items)."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):
        found = nested_class(arg)
        if found is not None:
            return found
    return None


def assert_fields_match(schema: dict[str, Any], cls: type, path: str) -> None:
    names = [f["name"] for f in schema["fields"]]
    assert names == [f.name for f in dataclasses.fields(cls)], path
    hints = typing.get_type_hints(cls)
    for field in schema["fields"]:
        inner = nested_class(hints[field["name"]])
        records = list(nested_records(field["type"]))
        assert (inner is None) == (records == []), f"{path}.{field['name']}"
        if inner is not None:
            assert_fields_match(records[0], inner, f"{path}.{field['name']}")


@pytest.mark.parametrize("key", sorted(EVENT_SCHEMAS, key=str), ids=str)
def test_schema_fields_are_the_event_fields_recursively(key: SchemaKey) -> None:
    assert_fields_match(CATALOG[key].parsed, EVENT_SCHEMAS[key], str(key))


@pytest.mark.parametrize("key", sorted(EVENT_SCHEMAS, key=str), ids=str)
def test_schema_conventions(key: SchemaKey) -> None:
    raw = orjson.loads(CATALOG[key].text)
    market = key.group.removesuffix("_user")
    account = key.group.endswith("_user")
    assert raw["namespace"] == f"binance.{market}" + (".account" if account else "")
    assert raw["name"] == EVENT_SCHEMAS[key].__name__
    assert raw["doc"]
    hints = typing.get_type_hints(EVENT_SCHEMAS[key])
    fields = {f["name"]: f for f in raw["fields"]}
    assert list(fields)[-2:] == ["received_at_us", "extra"]
    assert fields["extra"]["default"] == {}
    assert fields["market"]["type"] == "string"
    for field in walk_fields(raw):
        assert field.get("doc"), f"{key}.{field['name']} has no doc"
        if isinstance(field["type"], list):
            assert field["type"][0] == "null"
            assert field["default"] is None, f"{key}.{field['name']} optional without default"
        if field["name"].endswith("_us"):
            plain = [t for t in typing_branches(field["type"]) if t != "null"]
            assert plain == [{"type": "long", "logicalType": "timestamp-micros"}], field["name"]
    for name, hint in hints.items():
        if "Decimal" in str(hint) and "Sequence" not in str(hint):
            assert DECIMAL in list(typing_branches(fields[name]["type"])), name


def typing_branches(avro_type: Any) -> list[Any]:
    return avro_type if isinstance(avro_type, list) else [avro_type]
