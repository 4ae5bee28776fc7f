"""Shared pieces of the account-stream tests: keys, settings, a recording sink, waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from gateway.accounts.settings import AccountSettings
from gateway.accounts.stream import AccountStream
from gateway.accounts.topics import account_topics, ensure_account_topics
from gateway.adapters.kafka import KafkaSink
from gateway.binance.signing import KeyType
from gateway.metrics import Metrics
from gateway.records.avro import SchemaCatalog, SingleObjectFraming, read_header
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.settings import BinanceSettings, KafkaSettings
from gateway.simulator.exchange import ExchangeSimulator

CATALOG = SchemaCatalog.load()


class RecordingSink:
    """Keeps every record, decoded, in send order."""

    def __init__(self) -> None:
        self.records: list[ProducerRecord] = []
        self.changed = asyncio.Event()

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None:
        self.records.append(record)
        self.changed.set()

    def kinds(self) -> list[str]:
        return [dict(r.headers)["event_kind"].decode() for r in self.records]

    def values(self, kind: str) -> list[dict[str, Any]]:
        from gateway.records.avro import decode

        found = []
        for record in self.records:
            if dict(record.headers)["event_kind"].decode() == kind:
                header = read_header(record.value)
                schema = CATALOG.by_fingerprint(header.fingerprint) if header.fingerprint else None
                assert schema is not None
                found.append(decode(record.value, header, schema))
        return found

    async def wait_for(
        self, predicate: Callable[[list[str]], bool], timeout_s: float = 10.0
    ) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate(self.kinds()):
                self.changed.clear()
                await self.changed.wait()


def pem_keys(key_type: KeyType) -> tuple[str, str]:
    """A fresh (private PEM, public PEM) pair of ``key_type``."""
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if key_type is KeyType.RSA:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def account_settings(
    sim: ExchangeSimulator,
    tmp_path: Path,
    *,
    alias: str,
    api_key: str,
    secret: str,
    key_type: KeyType = KeyType.HMAC,
    **extra: Any,
) -> AccountSettings:
    """An account whose credentials are files (as Kubernetes mounts them), aimed at ``sim``."""
    key_file = tmp_path / f"{alias}.api-key"
    secret_file = tmp_path / f"{alias}.secret"
    key_file.write_text(api_key + "\n")
    secret_file.write_text(secret)
    secret_field = "secret_file" if key_type is KeyType.HMAC else "private_key_file"
    urls: dict[str, str] = {"rest_url": sim.rest_url}
    if sim.market.value == "spot":
        urls["ws_api_url"] = f"{sim.ws_url}/ws-api/v3"
    else:
        urls["stream_url"] = sim.ws_url
    return AccountSettings(
        alias=alias,
        market=sim.market.value,
        key_type=key_type,
        api_key_file=key_file,
        **{secret_field: secret_file},
        **urls,
        **extra,
    )


def make_stream(
    account: AccountSettings,
    sink: Any,
    *,
    prefix: str = "binance",
    metrics: Metrics | None = None,
    rotate_after_s: float = 23 * 3600,
    **kwargs: Any,
) -> tuple[AccountStream, Metrics]:
    namer = TopicNamer(prefix)
    metrics = metrics or Metrics()
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), namer, "it-gateway")
    binance = BinanceSettings(
        ping_interval_s=5, ping_timeout_s=5, open_timeout_s=5, rotate_after_s=rotate_after_s
    )
    return AccountStream(account, binance, builder, sink, metrics, namer, **kwargs), metrics


@contextlib.asynccontextmanager
async def running(stream: AccountStream) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(stream.run(), name=stream.name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` (health counters have no event to wait on) until true or time out."""
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def health_count(health: Mapping[str, object], field: str) -> int:
    """One of a stream's health counters (``events``, ``snapshots``)."""
    count = health[field]
    assert isinstance(count, int), (field, count)
    return count


def health_total(streams: Iterable[AccountStream], field: str) -> int:
    return sum(health_count(stream.health(), field) for stream in streams)


@dataclass(frozen=True)
class AccountsInKafka:
    topics: list[str]  # one per account, in the accounts' order
    created: list[str]  # what ensure_account_topics reported it created
    streams: list[AccountStream]


@contextlib.asynccontextmanager
async def streaming_to_kafka(
    accounts: list[AccountSettings],
    kafka_bootstrap: str,
    topic_prefix: str,
    *,
    snapshots: int,
    **stream_options: Any,
) -> AsyncIterator[AccountsInKafka]:
    """Every account streaming into its topic through one real ``KafkaSink``, entered once
    ``snapshots`` snapshots are in; on leaving, the streams stop, then the sink flushes."""
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    namer = TopicNamer(topic_prefix)
    topics = account_topics(namer, accounts)
    created = await ensure_account_topics(kafka, namer, accounts)
    sink = KafkaSink(kafka)
    await sink.start()
    try:
        streams = [make_stream(a, sink, prefix=topic_prefix, **stream_options)[0] for a in accounts]
        async with contextlib.AsyncExitStack() as stack:
            for stream in streams:
                await stack.enter_async_context(running(stream))
            await eventually(lambda: health_total(streams, "snapshots") >= snapshots)
            yield AccountsInKafka(topics, created, streams)
        await sink.flush()
    finally:
        await sink.stop()
