"""Every schema in schemas/ can read data written with its released version, per the real registry."""

from __future__ import annotations

import orjson
import pytest

from gateway import schema_admin
from gateway.records.avro import AvroSchema, SchemaCatalog

pytestmark = pytest.mark.registry


async def test_current_schemas_are_backward_compatible_with_the_released_ones(schema_registry_url):
    current, released = SchemaCatalog.load(), schema_admin.load_released()
    assert len(released) > 0, "schemas/released/ is the promise to consumers; it must exist"
    results = await schema_admin.check_backward_compatible(schema_registry_url, current, released)
    assert [str(r.key) for r in results if not r.compatible] == []
    # A released schema may not silently disappear: its topic's consumers still read it.
    assert {s.key for s in released} <= {s.key for s in current}


def mutated(schema: AvroSchema, change) -> AvroSchema:
    raw = orjson.loads(schema.text)
    change(raw)
    return AvroSchema.from_text(schema.key, orjson.dumps(raw).decode())


async def test_the_check_catches_a_breaking_change_and_accepts_a_safe_one(schema_registry_url):
    trade = next(s for s in SchemaCatalog.load() if str(s.key) == "spot/trade")
    released = SchemaCatalog({trade.key: trade})

    def add_required_field(raw):
        raw["fields"].insert(-1, {"name": "venue", "type": "string"})

    def add_optional_field(raw):
        raw["fields"].insert(-1, {"name": "venue", "type": ["null", "string"], "default": None})

    breaking = SchemaCatalog({trade.key: mutated(trade, add_required_field)})
    safe = SchemaCatalog({trade.key: mutated(trade, add_optional_field)})
    [broken] = await schema_admin.check_backward_compatible(schema_registry_url, breaking, released)
    [fine] = await schema_admin.check_backward_compatible(schema_registry_url, safe, released)
    assert (broken.compatible, fine.compatible) == (False, True)
