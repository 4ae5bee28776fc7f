"""Schema-registry client for the Confluent REST API (Apicurio's ``/apis/ccompat/v7`` too).

Subjects follow TopicNameStrategy: ``<topic>-value``. Ids are looked up once at start-up and cached
by the caller; the hot path never talks to the registry.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson

from gateway.adapters.http_session import HttpSessionClient
from gateway.errors import RegistryError
from gateway.records.avro import AvroSchema, SchemaCatalog, SchemaKey
from gateway.records.topics import GATEWAY_GROUP, TopicNamer

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
COMPATIBILITY_LEVELS = ("BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FULL", "NONE")


def value_subject(topic: str) -> str:
    """TopicNameStrategy: one schema lineage per topic."""
    return f"{topic}-value"


def topic_for_schema(namer: TopicNamer, key: SchemaKey) -> str:
    """The topic whose values a schema describes."""
    if key.group == GATEWAY_GROUP:
        return namer.gateway_topic(key.kind)
    return namer.topic(key.group, key.kind)


@contextlib.contextmanager
def _map_errors(url: str) -> Iterator[None]:
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RegistryError(f"schema registry at {url} unreachable: {exc!r}") from exc


class SchemaRegistryClient(HttpSessionClient):
    """A small async client: register, look up, check compatibility."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s, headers={"Content-Type": CONTENT_TYPE})
        self.url = url.rstrip("/")

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        session = self.session
        data = None if body is None else orjson.dumps(body)
        with _map_errors(self.url):
            async with session.request(method, self.url + path, data=data) as response:
                payload = await response.read()
                if response.status >= 400:
                    raise RegistryError(
                        f"registry {method} {path} -> {response.status}: "
                        f"{payload[:300].decode(errors='replace')}"
                    )
                return orjson.loads(payload) if payload else None

    async def register(self, subject: str, schema_text: str) -> int:
        """Register (or find) a schema under a subject; returns its global id."""
        reply = await self._request(
            "POST", f"/subjects/{subject}/versions", {"schema": schema_text, "schemaType": "AVRO"}
        )
        return int(reply["id"])

    async def schema_by_id(self, schema_id: int) -> str:
        reply = await self._request("GET", f"/schemas/ids/{schema_id}")
        return str(reply["schema"])

    async def subjects(self) -> list[str]:
        return [str(s) for s in await self._request("GET", "/subjects")]

    async def set_compatibility(self, subject: str, level: str) -> None:
        if level not in COMPATIBILITY_LEVELS:
            raise RegistryError(f"unknown compatibility level {level!r}")
        await self._request("PUT", f"/config/{subject}", {"compatibility": level})

    async def is_compatible(self, subject: str, schema_text: str) -> bool:
        """Whether a schema may be registered next under the subject's compatibility rule."""
        reply = await self._request(
            "POST",
            f"/compatibility/subjects/{subject}/versions/latest",
            {"schema": schema_text, "schemaType": "AVRO"},
        )
        return bool(reply["is_compatible"])


async def register_catalog(
    client: SchemaRegistryClient,
    catalog: SchemaCatalog,
    namer: TopicNamer,
    compatibility: str = "BACKWARD",
) -> dict[SchemaKey, int]:
    """Register every schema under its topic's value subject; returns the ids to frame with."""
    ids: dict[SchemaKey, int] = {}
    schema: AvroSchema
    for schema in catalog:
        subject = value_subject(topic_for_schema(namer, schema.key))
        await client.set_compatibility(subject, compatibility)
        ids[schema.key] = await client.register(subject, schema.text)
    logger.info("registered %d schemas at %s", len(ids), client.url)
    return ids
