"""One measured run of one pipeline, in a process of its own: ``python -m gateway.benchmark.probe``.

A process per run keeps the figures apart: CPU time and peak RSS are this process's alone (the
feeder and Kafka run elsewhere), and no run inherits another's heap. The run streams for
``warmup_s``, then measures over ``window_s``: records Kafka acknowledged (acks=all), CPU seconds
(user + system) spent meanwhile, and for each acknowledged record its event → Kafka latency,
the acknowledgement's wall-clock millisecond minus the event time ``E`` the feeder stamped when it
wrote the frame (so it includes the socket and the reader's queue; resolution 1 ms). The result
is one JSON line on stdout.

With ``shards > 1`` and coordination on, it also records when each shard started streaming,
after a first run filled the topics, so the second start resumes from what Kafka holds as a
restarted or scaled-out worker does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import time
from array import array
from dataclasses import asdict, dataclass, field

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gateway.benchmark.reference import KINDS, ReferencePipeline
from gateway.benchmark.sampler import Sampler
from gateway.binance.streams import chunk, combined_path, stream_name
from gateway.logs import configure_logging
from gateway.records.topics import ProducerRecord
from gateway.runtime.loop import run_async, tune_gc
from gateway.settings import GatewaySettings
from gateway.simulator.config import simulated_symbols

PARTITIONS = 6
"""As the gateway's default ``kafka.partitions``, for the reference's topics too."""


@dataclass
class ProbeResult:
    pipeline: str
    events: int
    window_s: float
    events_per_s: float
    cpu_us_per_event: float
    cores_used: float
    """CPU seconds per second over the window: below 1 at full speed, the machine's other load
    took the rest (the figure that says how much an events/s figure was starved)."""
    peak_rss_mib: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    shard_start_s: dict[str, float] = field(default_factory=dict)
    """Per shard, seconds from the (second) start to streaming; only with several shards."""
    profile: dict[str, float] = field(default_factory=dict)
    """With ``--profile``: each cost centre's share of the window's CPU
    (:mod:`gateway.benchmark.sampler`)."""


class Acks:
    """Acknowledged records, and (while measuring) their event → Kafka latency in ms."""

    def __init__(self) -> None:
        self.count = 0
        self.first = asyncio.Event()
        self.measuring = False
        self.latency_ms = array("q")

    def gateway(self, record: ProducerRecord, latency_ns: int) -> None:
        if not self.count:
            self.first.set()
        self.count += 1
        if self.measuring and record.timestamp_ms is not None:
            self.latency_ms.append(time.time_ns() // 1_000_000 - record.timestamp_ms)

    def reference(self, event_ms: list[int]) -> None:
        if not self.count:
            self.first.set()
        self.count += len(event_ms)
        if self.measuring:
            now = time.time_ns() // 1_000_000
            self.latency_ms.extend(now - e for e in event_ms)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    return float(values[min(len(values) - 1, int(q * len(values)))])


async def measure(
    acks: Acks, warmup_s: float, window_s: float, sampler: Sampler | None = None
) -> tuple[int, float, float]:
    """(records acknowledged, seconds, CPU seconds) over the window after the warm-up.

    The warm-up starts at the first acknowledgement, so start-up (topics, resume) is not in it.
    A ``sampler`` samples the window only.
    """
    async with asyncio.timeout(60):
        await acks.first.wait()
    await asyncio.sleep(warmup_s)
    if sampler is not None:
        sampler.start()
    count, cpu, started = acks.count, _cpu_s(), time.monotonic()
    acks.measuring = True
    await asyncio.sleep(window_s)
    acks.measuring = False
    return acks.count - count, time.monotonic() - started, _cpu_s() - cpu


def urls(feed_url: str, symbols: tuple[str, ...], channels: list[str]) -> list[str]:
    """The combined-stream URLs of the streams, split as a gateway shard splits them."""
    names = [stream_name(s, c) for s in symbols for c in channels]
    return [feed_url + combined_path(group) for group in chunk(names)]


async def run_reference(args: argparse.Namespace, symbols: tuple[str, ...]) -> ProbeResult:
    kinds = {KINDS[_EVENT_TYPE[c.split("_")[0].split("@")[0]]][0] for c in args.channels}
    admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
    await admin.start()
    try:
        topics = [NewTopic(f"{args.prefix}.spot.{k}", PARTITIONS, 1) for k in sorted(kinds)]
        await admin.create_topics(topics)
    finally:
        await admin.close()
    acks = Acks()
    pipeline = ReferencePipeline(args.bootstrap, args.prefix, acks.reference)
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.run(urls(args.feed, symbols, args.channels), stop))
    if args.gc:
        tune_gc()
    events, seconds, cpu = await measure(acks, args.warmup, args.window)
    stop.set()
    await task
    return _result("reference", acks, events, seconds, cpu)


_EVENT_TYPE = {"aggTrade": "aggTrade", "trade": "trade", "depth": "depthUpdate",
               "kline": "kline", "ticker": "24hrTicker"}  # fmt: skip


def gateway_settings(args: argparse.Namespace, symbols: tuple[str, ...]) -> GatewaySettings:
    return GatewaySettings(
        gateway_id="bench",
        binance={
            "markets": {
                "spot": {
                    "symbols": list(symbols),
                    "channels": args.channels,
                    "stream_url": args.feed,
                    "rest_url": args.feed.replace("ws://", "http://"),
                    "shards": args.shards,
                    # The reference keeps no books: both pipelines write the diffs only.
                    "sync_books": False,
                }
            },
            "exchange_info_poll_s": 3600,
        },
        coordination={
            "enabled": args.shards > 1,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
        },
        kafka={"bootstrap_servers": args.bootstrap, "topic_prefix": args.prefix},
        status={"enabled": False},
        log={"level": args.log_level, "json": False},
    )


async def run_gateway(args: argparse.Namespace, symbols: tuple[str, ...]) -> ProbeResult:
    from gateway.runtime.worker import Gateway

    settings = gateway_settings(args, symbols)
    starts: dict[str, float] = {}
    if args.shards > 1:
        # A first run fills the topics, so the measured start resumes from what Kafka holds.
        first = Gateway(settings)
        stop = asyncio.Event()
        task = asyncio.create_task(first.run(stop))
        await asyncio.sleep(args.warmup + args.window)
        stop.set()
        await task
    acks = Acks()
    gateway = Gateway(settings, on_ack=acks.gateway)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    watcher = asyncio.create_task(_watch_shards(gateway, starts)) if args.shards > 1 else None
    await gateway.started.wait()
    if args.gc:
        tune_gc()
    sampler = Sampler() if args.profile else None
    events, seconds, cpu = await measure(acks, args.warmup, args.window, sampler)
    profile = sampler.stop() if sampler is not None else {}
    stop.set()
    await task
    if watcher is not None:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    result = _result("gateway", acks, events, seconds, cpu)
    result.shard_start_s = starts
    result.profile = {name: round(share, 4) for name, share in profile.items()}
    return result


async def _watch_shards(gateway: object, starts: dict[str, float]) -> None:
    """Seconds from now until each shard of the gateway first streams."""
    from gateway.runtime.shards import ShardRunner
    from gateway.runtime.worker import Gateway

    assert isinstance(gateway, Gateway)
    started = time.monotonic()
    while True:
        ownership = gateway.ownership
        if ownership is not None:
            for shard, unit in list(ownership.units.items()):
                if shard not in starts and isinstance(unit, ShardRunner) and unit.streaming:
                    starts[shard] = round(time.monotonic() - started, 3)
        await asyncio.sleep(0.02)


def _result(pipeline: str, acks: Acks, events: int, seconds: float, cpu: float) -> ProbeResult:
    latencies = sorted(acks.latency_ms)
    return ProbeResult(
        pipeline=pipeline,
        events=events,
        window_s=round(seconds, 3),
        events_per_s=round(events / seconds, 1),
        cpu_us_per_event=round(cpu / events * 1e6, 2) if events else float("nan"),
        cores_used=round(cpu / seconds, 3),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=float(latencies[-1]) if latencies else float("nan"),
    )


async def main(args: argparse.Namespace) -> ProbeResult:
    symbols = simulated_symbols(args.symbols)
    if args.pipeline == "reference":
        return await run_reference(args, symbols)
    return await run_gateway(args, symbols)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", choices=["gateway", "reference"])
    parser.add_argument("--feed", required=True, help="the feeder's ws://host:port")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True, help="topic prefix, fresh per run")
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--channels", type=lambda s: s.split(","), default=["aggTrade"])
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--log-level", default="ERROR")
    parser.add_argument("--gc", action="store_true", help="gc.freeze() + a larger gen-0 threshold")
    parser.add_argument("--profile", action="store_true", help="sample where the CPU goes")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    configure_logging(arguments.log_level, json_format=False)
    result = run_async(main(arguments))
    sys.stdout.write(orjson.dumps(asdict(result)).decode() + "\n")
