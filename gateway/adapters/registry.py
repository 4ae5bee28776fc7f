"""Schema-registry client for the Confluent REST API (Apicurio's ``/apis/ccompat/v7`` too).

Subjects follow TopicNameStrategy: ``<topic>-value``. Ids are looked up once at start-up and cached
by the caller; the hot path never talks to the registry.

The registry belongs to the platform (:mod:`gateway.adapters.registry_settings`):
:func:`prepare_catalog` checks each subject's compatibility rule against the project's promise and
changes it only when told to, then registers the schemas or only verifies they are registered.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import ssl
from collections.abc import Iterator
from typing import Any, Literal

import aiohttp
import orjson

from gateway.adapters.http_session import HttpSessionClient
from gateway.adapters.registry_settings import (
    PROMISED_COMPATIBILITY,
    Compatibility,
    RegistrySettings,
    keeps_promise,
    split_credentials,
)
from gateway.errors import ConfigError, RegistryError, RegistryNotFoundError
from gateway.records.avro import AvroSchema, SchemaCatalog, SchemaKey
from gateway.records.topics import GATEWAY_GROUP, TopicNamer

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_NOT_FOUND = 404


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


def basic_authorization(username: str, password: str) -> str:
    """The HTTP basic auth header value (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class SchemaRegistryClient(HttpSessionClient):
    """A small async client: register, look up, check compatibility, read and set rules.

    Credentials in ``url`` (``https://user:secret@host/...``) are taken out of it and sent as
    HTTP basic auth; :attr:`url` never holds them, so it is safe to log.
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 10.0,
        *,
        basic_auth: tuple[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        clean, username, password = split_credentials(url)
        if basic_auth is None and username is not None:
            basic_auth = (username, password or "")
        headers = {"Content-Type": CONTENT_TYPE}
        if basic_auth is not None:
            headers["Authorization"] = basic_authorization(*basic_auth)
        super().__init__(timeout_s, headers=headers, ssl_context=ssl_context)
        self.url = clean.rstrip("/")

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> SchemaRegistryClient:
        """A client for ``registry.url`` with its login and TLS settings.

        Raises:
            ConfigError: no URL, or a password or TLS file that cannot be read.
        """
        if settings.url is None:
            raise ConfigError("registry.url is not set")
        return cls(
            settings.url,
            settings.timeout_s,
            basic_auth=settings.basic_auth(),
            ssl_context=settings.ssl_context(),
        )

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        session = self.session
        data = None if body is None else orjson.dumps(body)
        with _map_errors(self.url):
            async with session.request(method, self.url + path, data=data) as response:
                payload = await response.read()
                if response.status >= 400:
                    kind = RegistryNotFoundError if response.status == _NOT_FOUND else RegistryError
                    raise kind(
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

    async def lookup(self, subject: str, schema_text: str) -> int | None:
        """The id of this schema under the subject, or None when it is not registered there."""
        try:
            reply = await self._request(
                "POST", f"/subjects/{subject}", {"schema": schema_text, "schemaType": "AVRO"}
            )
        except RegistryNotFoundError:
            return None
        return int(reply["id"])

    async def set_compatibility(self, subject: str, level: Compatibility) -> None:
        await self._request("PUT", f"/config/{subject}", {"compatibility": level})

    async def compatibility(self, subject: str) -> str:
        """The rule the registry applies to the subject: its own, else the global one.

        Confluent answers 404 for a subject without a rule of its own (unless asked to fall
        back); Apicurio answers NONE for it and 404 for a subject that does not exist yet.
        Either way the global rule is what applies then.
        """
        with contextlib.suppress(RegistryNotFoundError):
            reply = await self._request("GET", f"/config/{subject}?defaultToGlobal=true")
            level = str(reply.get("compatibilityLevel") or reply.get("compatibility") or "NONE")
            if level != "NONE":
                return level
        reply = await self._request("GET", "/config")
        return str(reply.get("compatibilityLevel") or reply.get("compatibility") or "NONE")

    async def delete_subject(self, subject: str) -> None:
        """Delete a subject for good (soft delete first, as the Confluent API requires)."""
        with contextlib.suppress(RegistryNotFoundError):
            await self._request("DELETE", f"/subjects/{subject}")
        with contextlib.suppress(RegistryNotFoundError):
            await self._request("DELETE", f"/subjects/{subject}?permanent=true")

    async def is_compatible(self, subject: str, schema_text: str) -> bool:
        """Whether a schema may be registered next under the subject's compatibility rule."""
        reply = await self._request(
            "POST",
            f"/compatibility/subjects/{subject}/versions/latest",
            {"schema": schema_text, "schemaType": "AVRO"},
        )
        return bool(reply["is_compatible"])


async def prepare_catalog(
    client: SchemaRegistryClient,
    catalog: SchemaCatalog,
    namer: TopicNamer,
    *,
    manage_compatibility: bool = False,
    register: Literal["auto", "check"] = "auto",
) -> dict[SchemaKey, int]:
    """Make sure every schema can be written under its topic's value subject; returns the ids.

    Each subject's rule must keep :data:`PROMISED_COMPATIBILITY`: a looser one is raised to it
    with ``manage_compatibility``, otherwise nothing is changed and RegistryError names it. Then
    the schemas are registered (``auto``) or only looked up (``check``: a missing one raises).
    """
    subjects = {s.key: value_subject(topic_for_schema(namer, s.key)) for s in catalog}
    await _keep_promise(client, sorted(subjects.values()), manage=manage_compatibility)
    ids: dict[SchemaKey, int] = {}
    missing: list[str] = []
    schema: AvroSchema
    for schema in catalog:
        subject = subjects[schema.key]
        if register == "auto":
            ids[schema.key] = await client.register(subject, schema.text)
        elif (found := await client.lookup(subject, schema.text)) is not None:
            ids[schema.key] = found
        else:
            missing.append(subject)
    if missing:
        raise RegistryError(
            f"{len(missing)} schemas are not registered at {client.url} (registry.register is "
            f"check): {_some(missing)}; register schemas/released/ with `gateway schemas register`"
        )
    verb = "registered" if register == "auto" else "found"
    logger.info("%s %d schemas at %s", verb, len(ids), client.url)
    return ids


async def _keep_promise(client: SchemaRegistryClient, subjects: list[str], *, manage: bool) -> None:
    looser: list[str] = []
    for subject in subjects:
        level = await client.compatibility(subject)
        if keeps_promise(level):
            continue
        if manage:
            logger.info("compatibility of %s: %s -> %s", subject, level, PROMISED_COMPATIBILITY)
            await client.set_compatibility(subject, PROMISED_COMPATIBILITY)
        else:
            looser.append(f"{subject} ({level})")
    if looser:
        raise RegistryError(
            f"{len(looser)} subjects at {client.url} have a compatibility rule looser than the "
            f"{PROMISED_COMPATIBILITY} this project promises (schemas/README.md): {_some(looser)};"
            f" set {PROMISED_COMPATIBILITY} on them (or globally), or registry.manage_compatibility"
            ": true to let the gateway set it"
        )


def _some(names: list[str], shown: int = 3) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


async def register_catalog(
    client: SchemaRegistryClient, catalog: SchemaCatalog, namer: TopicNamer
) -> dict[SchemaKey, int]:
    """Register every schema, raising each looser rule to the promise (tools and tests that own
    their registry); the gateway itself goes through :func:`prepare_catalog`."""
    return await prepare_catalog(client, catalog, namer, manage_compatibility=True)
