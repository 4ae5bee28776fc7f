"""``gateway schemas``: list, validate, register and compatibility-check ``schemas/``.

"Released" schemas are the last versions consumers were promised, kept as copies under
``schemas/released/``; ``check`` proves each current schema can read data written with its
released version (BACKWARD), using the real registry's own compatibility rules.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from gateway.adapters.registry import (
    SchemaRegistryClient,
    register_catalog,
    topic_for_schema,
    value_subject,
)
from gateway.records.avro import SCHEMAS_DIR, SchemaCatalog, SchemaKey
from gateway.records.topics import TopicNamer

RELEASED_DIR = SCHEMAS_DIR / "released"


@dataclass(frozen=True, slots=True)
class CompatibilityResult:
    key: SchemaKey
    subject: str
    compatible: bool
    released: bool
    """False when the schema is new: nothing was promised yet, so it is compatible."""


def describe(catalog: SchemaCatalog, namer: TopicNamer) -> list[tuple[str, str, str, int]]:
    """(schema file, record name, topic, field count) for every schema."""
    return [
        (str(s.key), s.full_name, topic_for_schema(namer, s.key), len(s.parsed["fields"]))
        for s in catalog
    ]


async def register(url: str, catalog: SchemaCatalog, namer: TopicNamer) -> dict[SchemaKey, int]:
    async with SchemaRegistryClient(url) as client:
        return await register_catalog(client, catalog, namer)


async def check_backward_compatible(
    url: str,
    current: SchemaCatalog,
    released: SchemaCatalog,
    *,
    scratch_prefix: str | None = None,
) -> list[CompatibilityResult]:
    """Ask the registry whether each current schema can read its released version's data.

    The released versions are registered under scratch subjects (a unique topic prefix), so the
    check never touches the subjects of a running gateway.
    """
    namer = TopicNamer(scratch_prefix or f"compat-{uuid.uuid4().hex[:8]}")
    results = []
    async with SchemaRegistryClient(url) as client:
        for schema in current:
            subject = value_subject(topic_for_schema(namer, schema.key))
            if schema.key not in released:
                results.append(CompatibilityResult(schema.key, subject, True, released=False))
                continue
            await client.set_compatibility(subject, "BACKWARD")
            await client.register(subject, released[schema.key].text)
            ok = await client.is_compatible(subject, schema.text)
            results.append(CompatibilityResult(schema.key, subject, ok, released=True))
    return results


def load_released(directory: Path = RELEASED_DIR) -> SchemaCatalog:
    """The released snapshot (empty when nothing was released yet)."""
    if not directory.is_dir():
        return SchemaCatalog({})
    return SchemaCatalog.load(directory)


def release(source: Path = SCHEMAS_DIR, target: Path = RELEASED_DIR) -> int:
    """Snapshot the current schemas as the released versions; returns how many."""
    count = 0
    for path in sorted(source.glob("*/*.avsc")):  # one level: never the released copies
        destination = target / path.parent.name / path.name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        count += 1
    return count
