"""``gateway schemas``: list, validate, register and compatibility-check ``schemas/``.

"Released" schemas are the last versions consumers were promised, kept as copies under
``schemas/released/``; ``check`` proves each current schema and its released version can read each
other's data (the project's promise, FULL_TRANSITIVE), using the real registry's own rules, on
scratch subjects it deletes afterwards.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from gateway.adapters.registry import (
    SchemaRegistryClient,
    prepare_catalog,
    topic_for_schema,
    value_subject,
)
from gateway.adapters.registry_settings import PROMISED_COMPATIBILITY, RegistrySettings
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


async def register(
    registry: RegistrySettings, catalog: SchemaCatalog, namer: TopicNamer
) -> dict[SchemaKey, int]:
    """What the platform runs (``gateway schemas register``): register every schema, leaving
    each subject's rule alone unless ``registry.manage_compatibility`` (a looser one refuses)."""
    async with SchemaRegistryClient.from_settings(registry) as client:
        return await prepare_catalog(
            client, catalog, namer, manage_compatibility=registry.manage_compatibility
        )


async def check_compatible(
    registry: RegistrySettings,
    current: SchemaCatalog,
    released: SchemaCatalog,
    *,
    scratch_prefix: str | None = None,
) -> list[CompatibilityResult]:
    """Ask the registry whether each current schema keeps the promise against its released one.

    The released versions are registered under scratch subjects (a unique topic prefix, rule
    :data:`PROMISED_COMPATIBILITY`), so the check never touches the subjects of a running
    gateway; the scratch subjects are deleted afterwards, whatever happens.
    """
    namer = TopicNamer(scratch_prefix or f"compat-{uuid.uuid4().hex[:8]}")
    results = []
    created: list[str] = []
    async with SchemaRegistryClient.from_settings(registry) as client:
        try:
            for schema in current:
                subject = value_subject(topic_for_schema(namer, schema.key))
                if schema.key not in released:
                    results.append(CompatibilityResult(schema.key, subject, True, released=False))
                    continue
                created.append(subject)
                await client.register(subject, released[schema.key].text)
                await client.set_compatibility(subject, PROMISED_COMPATIBILITY)
                ok = await client.is_compatible(subject, schema.text)
                results.append(CompatibilityResult(schema.key, subject, ok, released=True))
        finally:
            for subject in created:
                await client.delete_subject(subject)
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
