"""The reference pipeline the gateway is measured against: the least a Binance → Kafka bridge does.

websockets → orjson → fastavro → aiokafka, with records appended straight to aiokafka's
per-partition batches (``create_batch`` / ``send_batch``), acks=all, lz4, idempotent, ``linger_ms``
5 as the gateway's default. It writes the same records as the gateway (the schemas in
``schemas/spot``, Avro single-object encoding, key = symbol, the same three headers, Kafka
timestamp = event time) to the same kind of topics, so the difference in cost is what the
gateway does beyond it: continuity, dead letters, metrics, backpressure accounting, supervision.
It keeps none of those guarantees and is not used anywhere but the benchmark.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import fastavro
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from fastavro.schema import fingerprint, to_parsing_canonical_form
from websockets.asyncio.client import connect

from gateway.records.avro import SCHEMAS_DIR

LINGER_S = 0.005
MAX_BATCH_BYTES = 262_144

Json = dict[str, Any]


def _us(ms: int) -> int:
    return ms * 1000


def agg_trade(d: Json, now_us: int) -> Json:
    return {
        "market": "spot", "symbol": d["s"], "event_time_us": _us(d["E"]), "agg_trade_id": d["a"],
        "price": Decimal(d["p"]), "quantity": Decimal(d["q"]), "normal_quantity": None,
        "first_trade_id": d["f"], "last_trade_id": d["l"], "trade_time_us": _us(d["T"]),
        "buyer_is_maker": d["m"], "best_match": d.get("M"), "received_at_us": now_us, "extra": {},
    }  # fmt: skip


def trade(d: Json, now_us: int) -> Json:
    return {
        "market": "spot", "symbol": d["s"], "event_time_us": _us(d["E"]), "trade_id": d["t"],
        "price": Decimal(d["p"]), "quantity": Decimal(d["q"]), "trade_time_us": _us(d["T"]),
        "buyer_is_maker": d["m"], "best_match": d.get("M"), "received_at_us": now_us, "extra": {},
    }  # fmt: skip


def _levels(rows: list[list[str]]) -> list[Json]:
    return [{"price": Decimal(p), "quantity": Decimal(q)} for p, q in rows]


def depth_update(d: Json, now_us: int) -> Json:
    return {
        "market": "spot", "symbol": d["s"], "pair": None, "event_time_us": _us(d["E"]),
        "transaction_time_us": None, "first_update_id": d["U"], "final_update_id": d["u"],
        "previous_final_update_id": None, "bids": _levels(d["b"]), "asks": _levels(d["a"]),
        "received_at_us": now_us, "extra": {},
    }  # fmt: skip


def kline(d: Json, now_us: int) -> Json:
    k = d["k"]
    return {
        "market": "spot", "symbol": d["s"], "event_time_us": _us(d["E"]), "interval": k["i"],
        "timezone": None, "open_time_us": _us(k["t"]), "close_time_us": _us(k["T"]),
        "open_price": Decimal(k["o"]), "high_price": Decimal(k["h"]), "low_price": Decimal(k["l"]),
        "close_price": Decimal(k["c"]), "volume": Decimal(k["v"]), "quote_volume": Decimal(k["q"]),
        "taker_buy_volume": Decimal(k["V"]), "taker_buy_quote_volume": Decimal(k["Q"]),
        "first_trade_id": k["f"], "last_trade_id": k["L"], "trade_count": k["n"],
        "closed": k["x"], "ignored": {"k.B": orjson.dumps(k["B"]).decode()}, "received_at_us": now_us, "extra": {},
    }  # fmt: skip


def ticker(d: Json, now_us: int) -> Json:
    return {
        "market": "spot", "symbol": d["s"], "pair": None, "event_time_us": _us(d["E"]),
        "price_change": Decimal(d["p"]), "price_change_percent": Decimal(d["P"]),
        "weighted_average_price": Decimal(d["w"]), "price_before_window": Decimal(d["x"]),
        "last_price": Decimal(d["c"]), "last_quantity": Decimal(d["Q"]),
        "best_bid_price": Decimal(d["b"]), "best_bid_quantity": Decimal(d["B"]),
        "best_ask_price": Decimal(d["a"]), "best_ask_quantity": Decimal(d["A"]),
        "open_price": Decimal(d["o"]), "high_price": Decimal(d["h"]), "low_price": Decimal(d["l"]),
        "volume": Decimal(d["v"]), "quote_volume": Decimal(d["q"]), "open_time_us": _us(d["O"]),
        "close_time_us": _us(d["C"]), "first_trade_id": d["F"], "last_trade_id": d["L"],
        "trade_count": d["n"], "received_at_us": now_us, "extra": {},
    }  # fmt: skip


KINDS: dict[str, tuple[str, Callable[[Json, int], Json]]] = {
    "aggTrade": ("agg_trade", agg_trade),
    "trade": ("trade", trade),
    "depthUpdate": ("depth_update", depth_update),
    "kline": ("kline", kline),
    "24hrTicker": ("ticker", ticker),
}
"""Binance's event type → (the schema's kind, the mapping to its record)."""


class Encoder:
    """Avro single-object encoding of the spot schemas: ``C3 01`` + fingerprint + body."""

    def __init__(self) -> None:
        self.schemas: dict[str, tuple[Any, bytes]] = {}
        for kind, _ in KINDS.values():
            parsed = fastavro.parse_schema(
                orjson.loads((SCHEMAS_DIR / "spot" / f"{kind}.avsc").read_bytes())
            )
            digest = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
            self.schemas[kind] = (parsed, b"\xc3\x01" + digest[::-1])  # little-endian

    def encode(self, kind: str, record: Json) -> bytes:
        parsed, header = self.schemas[kind]
        out = io.BytesIO()
        out.write(header)
        fastavro.schemaless_writer(out, parsed, record)
        return out.getvalue()


AckCallback = Callable[[list[int]], None]
"""Called once per acknowledged batch with each record's event time (ms)."""


class ReferencePipeline:
    """Reads one combined-stream URL and writes every event to ``<prefix>.spot.<kind>``."""

    def __init__(self, bootstrap: str, prefix: str, on_ack: AckCallback) -> None:
        self._prefix = prefix
        self._on_ack = on_ack
        self._encoder = Encoder()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            compression_type="lz4",
            linger_ms=int(LINGER_S * 1000),
            max_batch_size=MAX_BATCH_BYTES,
        )
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}
        self._batches: dict[tuple[str, int], tuple[BatchBuilder, list[int]]] = {}
        self._send_locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._in_flight: set[asyncio.Future[Any]] = set()
        self.records = 0

    async def run(self, urls: list[str], stop: asyncio.Event) -> None:
        await self._producer.start()
        try:
            readers = [asyncio.create_task(self._read(url)) for url in urls]
            flusher = asyncio.create_task(self._flush_every_linger())
            await stop.wait()
            for task in [*readers, flusher]:
                task.cancel()
            await asyncio.gather(*readers, flusher, return_exceptions=True)
            await self._flush()
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
        finally:
            await self._producer.stop()

    async def _read(self, url: str) -> None:
        headers_base = [("gateway_id", b"reference")]
        async with connect(url, max_size=None, compression=None) as ws:
            while True:
                frame = await ws.recv(decode=False)  # orjson reads the bytes: no str needed
                now_us = time.time_ns() // 1000
                data = orjson.loads(frame)["data"]
                kind, build = KINDS[data["e"]]
                value = self._encoder.encode(kind, build(data, now_us))
                headers = [
                    ("event_kind", kind.encode()),
                    ("received_at_us", str(now_us).encode()),
                    *headers_base,
                ]
                await self._append(
                    f"{self._prefix}.spot.{kind}", data["s"].encode(), value, data["E"], headers
                )

    async def _append(
        self, topic: str, key: bytes, value: bytes, event_ms: int, headers: list[tuple[str, bytes]]
    ) -> None:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = sorted(
                await self._producer.partitions_for(topic)
            )
        partition = self._partitioner(key, partitions, partitions)
        slot = self._batches.get((topic, partition))
        if slot is None:
            slot = self._batches[(topic, partition)] = (self._producer.create_batch(), [])
        batch, times = slot
        if batch.append(key=key, value=value, timestamp=event_ms, headers=headers) is None:
            # Full: the next batch starts with this record before the full one is handed over,
            # so a record another reader appends meanwhile lands in the new batch, in order.
            del self._batches[(topic, partition)]
            fresh = self._batches[(topic, partition)] = (self._producer.create_batch(), [])
            fresh[0].append(key=key, value=value, timestamp=event_ms, headers=headers)
            fresh[1].append(event_ms)
            await self._send(topic, partition, batch, times)
        else:
            times.append(event_ms)
        self.records += 1

    async def _send(
        self, topic: str, partition: int, batch: BatchBuilder, times: list[int]
    ) -> None:
        batch.close()
        lock = self._send_locks.get((topic, partition))
        if lock is None:
            lock = self._send_locks[(topic, partition)] = asyncio.Lock()
        async with lock:  # FIFO: batches of one partition reach the producer in order
            future = await self._producer.send_batch(batch, topic, partition=partition)
        self._in_flight.add(future)
        future.add_done_callback(lambda f: self._acked(f, times))

    def _acked(self, future: asyncio.Future[Any], times: list[int]) -> None:
        self._in_flight.discard(future)
        if not future.cancelled() and future.exception() is None:
            self._on_ack(times)

    async def _flush(self) -> None:
        for (topic, partition), (batch, times) in list(self._batches.items()):
            if times and self._batches.get((topic, partition), (None,))[0] is batch:
                del self._batches[(topic, partition)]
                await self._send(topic, partition, batch, times)

    async def _flush_every_linger(self) -> None:
        while True:
            await asyncio.sleep(LINGER_S)
            await self._flush()
