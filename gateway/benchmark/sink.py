"""CPU per record of ``KafkaSink`` alone, against a real broker.

``python -m gateway.benchmark.sink [--bootstrap host:port] [--records N]`` sends pre-built
aggTrade-sized records for 50 symbols through one sink, as the pipeline does (one awaited
``send()`` per record), flushes, and prints the process CPU time per record: the sink, aiokafka's
batching, compression and sender together, the records' making excluded. With ``--rate R`` the
records are sent at R per second instead, and the latency from ``send()`` to the broker's
acknowledgement is printed too (p50, p99). Without ``--bootstrap`` it starts a one-node Kafka from
the jars ``make fetch`` put in place (``gateway.infra.kafka``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator

from gateway.adapters.kafka import KafkaSink, ensure_topics
from gateway.records.topics import ProducerRecord, headers
from gateway.settings import KafkaSettings

SYMBOLS = 50
VALUE_BYTES = 110  # an Avro aggTrade with the single-object header


def records(topic: str, count: int) -> list[ProducerRecord]:
    keys = [f"SYM{i:03d}USDT".encode() for i in range(SYMBOLS)]
    now_ms = int(time.time() * 1000)
    return [
        ProducerRecord(
            topic,
            keys[i % SYMBOLS],
            os.urandom(VALUE_BYTES // 2) * 2,  # half repeated: lz4 has something to do
            headers("agg_trade", now_ms * 1000 + i, "bench"),
            now_ms,
            now_ms,
        )
        for i in range(count)
    ]


async def paced(sink: KafkaSink, batch: list[ProducerRecord], rate: float) -> None:
    """Send at ``rate`` records per second, a millisecond's worth at a time."""
    loop = asyncio.get_running_loop()
    start, per_tick = loop.time(), max(1, round(rate / 1000))
    for i in range(0, len(batch), per_tick):
        due = start + i / rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        for record in batch[i : i + per_tick]:
            await sink.send(record)


async def run(bootstrap: str, count: int, rate: float | None = None) -> dict[str, float]:
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix="bench")
    topic = f"bench.spot.agg_trade_{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    batch = records(topic, count)
    acks = 0
    latencies_ms: list[float] = []

    def acked(record: ProducerRecord, latency_ns: int) -> None:
        nonlocal acks
        acks += 1
        latencies_ms.append(latency_ns / 1e6)

    sink = KafkaSink(settings, on_ack=acked)
    await sink.start()
    for record in batch[:1000]:  # warm-up: metadata, connections
        await sink.send(record)
    await sink.flush()
    latencies_ms.clear()
    cpu0, wall0 = time.process_time(), time.monotonic()
    if rate:
        await paced(sink, batch, rate)
    else:
        for record in batch:
            await sink.send(record)
    await sink.flush()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    await sink.stop()
    assert acks == count + 1000, (acks, count)
    latencies_ms.sort()
    return {
        "records": count,
        "cpu_us_per_record": round(cpu / count * 1e6, 2),
        "records_per_s": round(count / wall),
        "p50_ms": round(latencies_ms[len(latencies_ms) // 2], 2),
        "p99_ms": round(latencies_ms[int(len(latencies_ms) * 0.99)], 2),
    }


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    from gateway.infra.kafka import KafkaCluster

    with KafkaCluster(1) as cluster:
        yield cluster.bootstrap_servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=None, help="records per second (paced)")
    args = parser.parse_args()
    with broker(args.bootstrap) as bootstrap:
        for _ in range(args.runs):
            print(asyncio.run(run(bootstrap, args.records, args.rate)))  # noqa: T201 - the tool's output


if __name__ == "__main__":
    main()
