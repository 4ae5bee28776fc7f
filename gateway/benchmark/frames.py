"""The per-frame path alone, on one core, with a sink that only counts: ``python -m gateway.benchmark.frames``.

``gateway bench`` measures the whole worker through a real broker, where the Kafka client, the
socket and the machine's neighbours blur what one change in the frame path is worth. This runs
the same frames (the feeder's, :mod:`gateway.benchmark.feed`) through two loops in one process:

* ``codec``: ``FrameParser.parse`` and ``RecordBuilder.build`` per event, nothing else: the floor
  the frame path stands on (owned by the parser and the record builder);
* ``pipeline``: :class:`gateway.runtime.pipeline.FramePipeline` as a shard builds it (trade continuity,
  stream liveness, plausibility and size limits, metrics), into a sink that counts.

``pipeline - codec`` (the median of the differences of runs taken in turns) is what the frame
path adds per event: metrics, continuity, the publish step's checks and the awaits between them.
CPU time is the process's (``time.process_time``), so the figure is per event of work done, not
of wall-clock time. The garbage collector's passes and their time are counted too
(``gc.callbacks``). Prints one JSON line per loop (median of ``--repeats``) and one for the
difference, e.g.::

    .venv/bin/python -m gateway.benchmark.frames --events 200000 --kind aggTrade --symbols 50
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from statistics import median
from typing import Any

import orjson

from gateway.adapters.binance_rest import BinanceRestClient
from gateway.benchmark.feed import Market as Feed
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.binance.settings import BinanceSettings
from gateway.metrics import Metrics
from gateway.records.avro import SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.runtime.liveness import LivenessMonitor
from gateway.runtime.loop import run_async, tune_gc
from gateway.runtime.pipeline import FrameLimits, FramePipeline
from gateway.runtime.sequence import TradeContinuity
from gateway.simulator.config import simulated_symbols

CHANNELS = {"aggTrade": "aggTrade", "trade": "trade", "depth": "depth@100ms", "kline": "kline_1m"}


@dataclass
class LoopResult:
    loop: str
    events: int
    cpu_us_per_event: float
    gc_passes: int
    gc_ms: float


class CountingSink:
    """Takes every record and keeps none: the Kafka sink's cost is not this benchmark's."""

    def __init__(self) -> None:
        self.records = 0

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None:
        self.records += 1


class GcTimer:
    """Counts the collector's passes and their time while installed."""

    def __init__(self) -> None:
        self.passes = 0
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.passes += 1
            self.seconds += time.perf_counter() - self._started


def frames(kind: str, symbols: int, events: int, levels: int = 20) -> list[bytes]:
    """``events`` combined-stream frames, round robin over the symbols, ids contiguous per symbol."""
    feed = Feed(levels)
    streams = [f"{s.lower()}@{CHANNELS[kind]}" for s in simulated_symbols(symbols)]
    return [feed.frame(streams[i % len(streams)]) for i in range(events)]


def pipeline_for(kind: str, symbols: int, sink: CountingSink) -> FramePipeline:
    """A shard's frame handler for ``kind`` on spot, as :mod:`gateway.runtime.shards` wires it."""
    catalog = SchemaCatalog.load()
    builder = RecordBuilder(catalog, SingleObjectFraming(), TopicNamer("bench"), "bench")
    metrics = Metrics()
    names = simulated_symbols(symbols)
    settings = BinanceSettings.model_validate(
        {"markets": {"spot": {"symbols": list(names), "channels": [CHANNELS[kind]]}}}
    )
    liveness = LivenessMonitor(settings, builder, sink, metrics)
    liveness.watch(Market.SPOT, [f"{s.lower()}@{CHANNELS[kind]}" for s in names])
    rest = BinanceRestClient("http://127.0.0.1:9", Market.SPOT)  # never asked: ids are contiguous
    continuity = TradeContinuity(Market.SPOT, rest, builder, sink, metrics)
    return FramePipeline(
        FrameParser(Market.SPOT),
        builder,
        sink,
        metrics,
        connection="spot-0",
        continuity=continuity,
        limits=FrameLimits(),
        liveness=liveness,
    )


async def codec_loop(batch: list[bytes]) -> int:
    parser = FrameParser(Market.SPOT)
    builder = RecordBuilder(SchemaCatalog.load(), SingleObjectFraming(), TopicNamer("b"), "b")
    count = 0
    now_us = time.time_ns() // 1000
    for raw in batch:
        for event in parser.parse(raw, now_us):
            builder.build(event)  # type: ignore[arg-type]
            count += 1
    return count


async def pipeline_loop(batch: list[bytes], kind: str, symbols: int) -> int:
    sink = CountingSink()
    pipeline = pipeline_for(kind, symbols, sink)
    now_us, now_ns = time.time_ns() // 1000, time.monotonic_ns()
    for raw in batch:
        await pipeline(raw, now_us, now_ns)
    return sink.records


Loop = Callable[[list[bytes]], Awaitable[int]]


async def measure(name: str, loop: Loop, batch: list[bytes]) -> LoopResult:
    timer = GcTimer()
    gc.collect()
    gc.callbacks.append(timer)
    started = time.process_time()
    try:
        events = await loop(batch)
    finally:
        cpu = time.process_time() - started
        gc.callbacks.remove(timer)
    return LoopResult(
        name, events, round(cpu / events * 1e6, 2), timer.passes, round(timer.seconds * 1e3, 1)
    )


async def main(args: argparse.Namespace) -> list[dict[str, object]]:
    """Median of the repeats per loop, and of the pipeline's excess over the codec per repeat:
    the loops take turns, so a neighbour's burst of load weighs on both sides of a difference."""
    loops: dict[str, Loop] = {
        "codec": codec_loop,
        "pipeline": lambda batch: pipeline_loop(batch, args.kind, args.symbols),
    }
    runs: dict[str, list[LoopResult]] = {name: [] for name in loops}
    for _ in range(args.repeats):
        for name, loop in loops.items():
            # Fresh frames per run: ids restart, so continuity sees a new, contiguous stream.
            batch = frames(args.kind, args.symbols, args.events)
            runs[name].append(await measure(name, loop, batch))
    results: list[dict[str, object]] = []
    for measured in runs.values():
        ordered = sorted(measured, key=lambda r: r.cpu_us_per_event)
        results.append(asdict(ordered[len(ordered) // 2]))
    excess = [
        p.cpu_us_per_event - c.cpu_us_per_event
        for c, p in zip(runs["codec"], runs["pipeline"], strict=True)
    ]
    results.append({"loop": "pipeline - codec", "cpu_us_per_event": round(median(excess), 2)})
    return results


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=sorted(CHANNELS), default="aggTrade")
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gc", action="store_true", help="gateway.runtime.loop.tune_gc() first")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    if arguments.gc:
        tune_gc()
    for result in run_async(main(arguments)):
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
