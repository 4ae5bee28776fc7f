"""Where each record goes: topic per market and event kind, key = symbol, and its headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.binance.events.base import event_class

DEFAULT_PREFIX = "binance"
DEAD_LETTER_KIND = "dead_letter"
TRADE_GAP_KIND = "trade_gap"
STREAM_STATUS_KIND = "stream_status"
GATEWAY_GROUP = "gateway"  # schemas/gateway/: the gateway's own records, one topic each

# Header names, documented for consumers in docs/consumers.md.
HEADER_EVENT_KIND = "event_kind"
HEADER_RECEIVED_AT_US = "received_at_us"
HEADER_GATEWAY_ID = "gateway_id"

Headers = list[tuple[str, bytes]]


@event_class  # frozen to mypy, a plain slotted class at run time: one is made per event
class ProducerRecord:
    """One Kafka record, ready to send."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int | None = None
    """Kafka's timestamp: when the gateway received the event (None: when it is sent).

    Never Binance's event time: the broker refuses timestamps far from its clock
    (``InvalidTimestampError``) and retention counts from them, so a replayed or skewed ``E``
    would either stop the producer or be deleted minutes after it was acknowledged. ``E`` stays in
    the value."""
    event_time_ms: int | None = None
    """The event's own time (``E`` and the like), kept for the lag metric only."""


class RecordSink(Protocol):
    """Where records go: ``KafkaSink`` in production, a recording fake in tests."""

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class TopicNamer:
    """``<prefix>.<market>.<kind>``, e.g. ``binance.spot.agg_trade``."""

    prefix: str = DEFAULT_PREFIX

    def topic(self, market: str, kind: str) -> str:
        return f"{self.prefix}.{market}.{kind}"

    def gateway_topic(self, kind: str) -> str:
        """The gateway's own records, all markets in one topic: ``binance.dead_letter``."""
        return f"{self.prefix}.{kind}"

    def dead_letter_topic(self) -> str:
        return self.gateway_topic(DEAD_LETTER_KIND)

    def account_topic(self, market: str, alias: str) -> str:
        """Every record of one account: ``binance.spot.account.desk-a`` (docs/accounts.md).

        One topic per account, not per kind, so access is granted per team with one prefixed
        Kafka ACL, and the account's events keep their order across kinds.
        """
        return f"{self.prefix}.{market}.account.{alias}"


# Per record inside a batch: attributes, timestamp and offset deltas, lengths (varints).
RECORD_OVERHEAD_BYTES = 64


def record_size(record: ProducerRecord) -> int:
    """An upper bound of the record's size on the wire, to compare with ``max.message.bytes``."""
    size = RECORD_OVERHEAD_BYTES + len(record.value) + len(record.key or b"")
    return size + sum(len(name) + len(value) + 10 for name, value in record.headers)


HEADER_ALLOWANCE_BYTES = 64 * 1024
"""More than the gateway's own headers ever take (a few dozen bytes): :func:`oversize` adds them
up only for a record whose value and key come this close to the limit."""


def oversize(record: ProducerRecord, limit: int) -> int | None:
    """The record's size (:func:`record_size`) if it exceeds ``limit``, else None; cheap for the
    records far below it, which is nearly all (no sum over the headers per record)."""
    if RECORD_OVERHEAD_BYTES + len(record.value) + len(record.key or b"") <= (
        limit - HEADER_ALLOWANCE_BYTES
    ):
        return None
    size = record_size(record)
    return size if size > limit else None


def symbol_key(symbol: str) -> bytes:
    """The partitioning key: per-symbol order is preserved because one symbol is one partition."""
    return symbol.encode()


def headers(event_kind: str, received_at_us: int, gateway_id: str) -> Headers:
    return [
        (HEADER_EVENT_KIND, event_kind.encode()),
        (HEADER_RECEIVED_AT_US, str(received_at_us).encode()),
        (HEADER_GATEWAY_ID, gateway_id.encode()),
    ]
