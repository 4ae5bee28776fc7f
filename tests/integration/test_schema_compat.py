"""Every schema in schemas/ keeps the project's promise (FULL_TRANSITIVE) against its released
version, per the real registry; the check leaves no subject behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gateway.adapters.registry import SchemaRegistryClient
from gateway.adapters.registry_settings import RegistrySettings
from gateway.commands import schema_admin
from gateway.records.avro import AvroSchema, SchemaCatalog

pytestmark = pytest.mark.registry


async def subjects(url: str) -> set[str]:
    async with SchemaRegistryClient(url) as client:
        return set(await client.subjects())


async def test_current_schemas_keep_the_promise_against_the_released_ones(
    schema_registry_url: str,
) -> None:
    current, released = SchemaCatalog.load(), schema_admin.load_released()
    assert len(released) > 0, "schemas/released/ is the promise to consumers; it must exist"
    before = await subjects(schema_registry_url)
    registry = RegistrySettings(url=schema_registry_url)
    results = await schema_admin.check_compatible(registry, current, released)
    assert [str(r.key) for r in results if not r.compatible] == []
    assert sum(r.released for r in results) == len(released)
    # The scratch subjects (compat-*) are gone again: the check leaves the registry as it was.
    assert await subjects(schema_registry_url) == before
    # A released schema may not silently disappear: its topic's consumers still read it.
    assert {s.key for s in released} <= {s.key for s in current}


def mutated(schema: AvroSchema, change: Callable[[dict[str, Any]], None]) -> AvroSchema:
    raw: dict[str, Any] = orjson.loads(schema.text)
    change(raw)
    return AvroSchema.from_text(schema.key, orjson.dumps(raw).decode())


async def test_the_check_catches_a_breaking_change_and_accepts_a_safe_one(
    schema_registry_url: str,
) -> None:
    trade = next(s for s in SchemaCatalog.load() if str(s.key) == "spot/trade")
    released = SchemaCatalog({trade.key: trade})

    def add_required_field(raw: dict[str, Any]) -> None:
        raw["fields"].insert(-1, {"name": "venue", "type": "string"})

    def add_optional_field(raw: dict[str, Any]) -> None:
        raw["fields"].insert(-1, {"name": "venue", "type": ["null", "string"], "default": None})

    def remove_field_without_default(raw: dict[str, Any]) -> None:
        # BACKWARD allowed this (new readers ignore it), but old readers of new data cannot
        # fill it in: FULL refuses, as schemas/README.md does.
        raw["fields"] = [f for f in raw["fields"] if f["name"] != "buyer_is_maker"]

    registry = RegistrySettings(url=schema_registry_url)
    verdicts = []
    for change in (add_required_field, remove_field_without_default, add_optional_field):
        candidate = SchemaCatalog({trade.key: mutated(trade, change)})
        [result] = await schema_admin.check_compatible(registry, candidate, released)
        verdicts.append(result.compatible)
    assert verdicts == [False, False, True]
