"""``gateway tail``: decoded records as JSON lines, decimals as exact strings."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from gateway.adapters.kafka_security import KafkaSecuritySettings
from gateway.adapters.registry_settings import RegistrySettings
from gateway.consumers.reader import ConsumedRecord, RecordReader, missing_topics
from gateway.errors import TopicNotFoundError


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Exact and without the schema's trailing zeros: 0.001000000000000000 -> "0.001"
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    raise TypeError(type(value).__name__)


def render(record: ConsumedRecord) -> bytes:
    """One JSON line with where the record sits, its key and its decoded value."""
    return orjson.dumps(
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key,
            "headers": record.headers,
            "value": record.value,
        },
        default=_json_default,
    )


async def run_tail(
    topics: Sequence[str],
    bootstrap_servers: str,
    registry_url: str | None,
    *,
    limit: int | None = None,
    from_beginning: bool = True,
    security: KafkaSecuritySettings | None = None,
    registry: RegistrySettings | None = None,
) -> None:
    """Print records until ``limit`` or Ctrl-C; ``security`` for a SASL / TLS listener,
    ``registry`` for a registry with a login or TLS (wins over ``registry_url``).

    Raises:
        TopicNotFoundError: a topic does not exist (rather than waiting for it forever).
    """
    missing = await missing_topics(topics, bootstrap_servers, security)
    if missing:
        raise TopicNotFoundError(missing, bootstrap_servers)
    async with RecordReader(
        topics,
        bootstrap_servers=bootstrap_servers,
        registry_url=registry_url,
        from_beginning=from_beginning,
        security=security,
        registry=registry,
    ) as reader:
        count = 0
        async for record in reader.records():
            sys.stdout.buffer.write(render(record) + b"\n")
            sys.stdout.buffer.flush()
            count += 1
            if limit is not None and count >= limit:
                return
