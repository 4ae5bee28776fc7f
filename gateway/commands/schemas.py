"""Output of ``gateway schemas``: tables a person reads, exit codes a script checks."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from gateway.adapters.registry_settings import PROMISED_COMPATIBILITY, RegistrySettings
from gateway.commands import schema_admin
from gateway.errors import ConfigError
from gateway.records.avro import SchemaCatalog
from gateway.records.topics import TopicNamer


async def run_schemas(action: str, registry: RegistrySettings, prefix: str) -> int:
    """Run one action; 0 when all is well, 1 when a check failed."""
    console = Console()
    namer = TopicNamer(prefix)
    catalog = SchemaCatalog.load()  # parsing every schema is the validation
    if action in ("list", "validate"):
        table = Table(title=f"{len(catalog)} schemas in schemas/, all valid Avro")
        for column in ("file", "record", "topic", "fields"):
            table.add_column(column)
        for row in schema_admin.describe(catalog, namer):
            table.add_row(*map(str, row))
        console.print(table)
        return 0
    if action == "register":
        ids = await schema_admin.register(registry, catalog, namer)
        for key, schema_id in sorted(ids.items(), key=lambda item: str(item[0])):
            console.print(f"{key}: id {schema_id}")
        return 0
    if action == "check":
        results = await schema_admin.check_compatible(
            registry, catalog, schema_admin.load_released()
        )
        for result in results:
            verdict = "new" if not result.released else ("ok" if result.compatible else "BREAKS")
            console.print(f"{verdict:>6}  {result.key}")
        broken = [r for r in results if not r.compatible]
        console.print(
            f"{len(broken)} incompatible with the released version"
            if broken
            else f"all {PROMISED_COMPATIBILITY} compatible with the released versions"
        )
        return 1 if broken else 0
    if action == "release":
        console.print(f"released {schema_admin.release()} schemas to schemas/released/")
        return 0
    raise ConfigError(f"unknown action {action!r}: list, validate, register, check or release")
