"""``gateway bench``: throughput, latency and memory through a real broker, plus the codec alone.

Layout on the 2-core machine: the simulator runs in its own process (so it is never what limits
the gateway), Kafka in its JVM, the gateway in this process. Latency is measured per record from
the moment its frame left the socket to Kafka's acknowledgement (acks=all).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import socket
import sys
import time
from array import array
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from gateway.bench_resilience import measure_book_sync, measure_rotation
from gateway.bench_scale import measure_failover, measure_scale_out
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.infra.kafka import KafkaCluster
from gateway.infra.maven import REPO_ROOT, fetch_all, kafka_version
from gateway.infra.registry import SchemaRegistry
from gateway.records.avro import ConfluentFraming, SchemaCatalog
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.settings import GatewaySettings
from gateway.simulator.config import simulated_symbols
from gateway.worker import Gateway

WARMUP_S = 3.0


@dataclass(frozen=True)
class PipelineResult:
    scenario: str
    events_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    events: int
    failed: int


@dataclass(frozen=True)
class CodecResult:
    event_kind: str
    events_per_s: float


class AckRecorder:
    """Collects (ack time, latency) pairs compactly; the gateway calls it per acknowledged record."""

    def __init__(self) -> None:
        self.at_ns = array("q")
        self.latency_ns = array("q")

    def __call__(self, record: ProducerRecord, latency_ns: int) -> None:
        self.at_ns.append(time.monotonic_ns())
        self.latency_ns.append(latency_ns)

    def window(self, start_ns: int, end_ns: int) -> list[int]:
        pairs = zip(self.at_ns, self.latency_ns, strict=True)
        return [latency for at, latency in pairs if start_ns <= at < end_ns]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index] / 1e6


@contextlib.asynccontextmanager
async def simulator_process(symbols: int, rate: float) -> AsyncIterator[tuple[str, str]]:
    """``gateway simulate`` in a child process: (ws_url, rest_url)."""
    ws_port, rest_port = _free_port(), _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "simulate", "--port", str(ws_port),
        "--rest-port", str(rest_port), "--symbols", str(symbols), "--rate", str(rate),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", ws_port)
                writer.close()
                break
            except OSError:
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("the simulator process did not start") from None
                await asyncio.sleep(0.1)
        yield f"ws://127.0.0.1:{ws_port}", f"http://127.0.0.1:{rest_port}"
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def measure_pipeline(
    scenario: str,
    *,
    symbols: int,
    rate: float,
    duration_s: float,
    bootstrap: str,
    registry_url: str,
) -> PipelineResult:
    names = simulated_symbols(symbols)
    recorder = AckRecorder()
    async with simulator_process(symbols, rate) as (ws_url, rest_url):
        settings = GatewaySettings(
            gateway_id="bench",
            binance={
                # One shard, one connection: the single-process path as before sharding (a
                # small symbol set split over many connections reads less); the sharded
                # figures are the scale-out ones.
                "markets": {
                    "spot": {
                        "symbols": names,
                        "stream_url": ws_url,
                        "rest_url": rest_url,
                        "shards": 1,
                    }
                }
            },
            kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"bench{time.time_ns()}"},
            registry={"url": registry_url},
            status={"port": 0},
            log={"json": False},
        )
        gateway = Gateway(settings, on_ack=recorder)
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        await asyncio.sleep(WARMUP_S)
        start_ns = time.monotonic_ns()
        await asyncio.sleep(duration_s)
        end_ns = time.monotonic_ns()
        stop.set()
        await task
    latencies = sorted(recorder.window(start_ns, end_ns))
    return PipelineResult(
        scenario=scenario,
        events_per_s=len(latencies) / ((end_ns - start_ns) / 1e9),
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=latencies[-1] / 1e6 if latencies else float("nan"),
        events=len(latencies),
        failed=gateway.sink.stats.failed,
    )


# One official payload per event kind (Binance's documented examples, beside the repository).
CODEC_CASES: tuple[tuple[str, Market, str | None], ...] = (
    ("spot/trade.json", Market.SPOT, "btcusdt@trade"),
    ("spot/aggTrade.json", Market.SPOT, "btcusdt@aggTrade"),
    ("spot/depth_diff.json", Market.SPOT, "btcusdt@depth@100ms"),
    ("spot/depth_partial.json", Market.SPOT, "btcusdt@depth20@100ms"),
    ("spot/bookTicker.json", Market.SPOT, "btcusdt@bookTicker"),
    ("spot/kline.json", Market.SPOT, "btcusdt@kline_1m"),
    ("spot/miniTicker.json", Market.SPOT, "btcusdt@miniTicker"),
    ("spot/ticker.json", Market.SPOT, "btcusdt@ticker"),
    ("usdm/aggTrade.json", Market.USDM, "btcusdt@aggTrade"),
    ("usdm/depth_diff.json", Market.USDM, "btcusdt@depth@100ms"),
    ("usdm/markPrice.json", Market.USDM, "btcusdt@markPrice@1s"),
    ("usdm-user/ORDER_TRADE_UPDATE.json", Market.USDM, None),
    ("spot-user/executionReport.json", Market.SPOT, None),
)
# Binance's official example payloads, carried with the tests (sources: tests/data/binance/README.md).
VECTORS_DIR = REPO_ROOT / "tests" / "data" / "binance"


def measure_codec(seconds_per_kind: float = 0.5) -> list[CodecResult]:
    """Parse + normalize + Avro-encode on one core, per event kind (no I/O): frames/s."""
    catalog = SchemaCatalog.load()
    builder = RecordBuilder(
        catalog, ConfluentFraming({s.key: 1 for s in catalog}), TopicNamer(), "bench"
    )
    results = []
    for name, market, stream in CODEC_CASES:
        path = VECTORS_DIR / name
        if not path.is_file():
            continue
        payload = orjson.loads(path.read_bytes())
        raw = orjson.dumps({"stream": stream, "data": payload} if stream else payload)
        parser = FrameParser(market)
        [event] = parser.parse(raw, 0)[:1]
        frames, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds_per_kind:
            for _ in range(200):
                for event in parser.parse(raw, 0):
                    builder.build(event)  # type: ignore[arg-type]
            frames += 200
        results.append(CodecResult(f"{market.value} {event.KIND}", frames / elapsed))
    return results


def _machine() -> dict[str, object]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kafka": kafka_version(),
        **{pkg: version(pkg) for pkg in ("aiokafka", "websockets", "fastavro", "orjson", "uvloop")},
    }


async def run_bench(*, duration_s: float, symbols: int, output_dir: Path) -> None:
    console = Console()
    with console.status("codec: parse + normalize + encode on one core"):
        codec = measure_codec()
    with console.status("fetching and starting Kafka and the schema registry"):
        await asyncio.to_thread(fetch_all)
        kafka, registry = KafkaCluster(1, quick_jit=False), SchemaRegistry()
        await asyncio.gather(asyncio.to_thread(kafka.start), asyncio.to_thread(registry.start))
    try:
        pipeline = []
        for scenario, rate in (("max rate", 0.0), ("steady 2k trades/s", 2000.0 / symbols)):
            with console.status(f"pipeline: {scenario}, {duration_s:.0f} s"):
                pipeline.append(
                    await measure_pipeline(
                        scenario,
                        symbols=symbols,
                        rate=rate,
                        duration_s=duration_s,
                        bootstrap=kafka.bootstrap_servers,
                        registry_url=registry.url,
                    )
                )
        with console.status("books: syncing 1,000 order books within the REST weight limit"):
            books = await measure_book_sync(kafka.bootstrap_servers)
        with console.status("rotation: make-before-break every second for 10 s"):
            rotation = await measure_rotation(kafka.bootstrap_servers)
        async with simulator_process(symbols, 0.0) as (ws_url, rest_url):
            with console.status("scale-out: 1, 2 and 3 worker processes sharing the shards"):
                scale = await measure_scale_out(
                    kafka.bootstrap_servers, ws_url, rest_url, symbols=symbols,
                    duration_s=duration_s,
                )  # fmt: skip
        async with simulator_process(symbols, 2000.0 / symbols) as (ws_url, rest_url):
            with console.status("failover: kill -9 of one worker of three"):
                failover = await measure_failover(
                    kafka.bootstrap_servers, ws_url, rest_url, symbols=symbols
                )
    finally:
        await asyncio.gather(asyncio.to_thread(kafka.stop), asyncio.to_thread(registry.stop))
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "symbols": symbols,
        "duration_s": duration_s,
        "peak_rss_mib": round(peak_rss_mib, 1),
        "pipeline": [asdict(r) for r in pipeline],
        "codec": [asdict(r) for r in codec],
        "book_sync": asdict(books),
        "rotation": asdict(rotation),
        "scale_out": [asdict(r) for r in scale],
        "failover": asdict(failover),
    }
    _print(console, report, pipeline, codec)
    console.print(
        f"order books: {books.books:,} synced in {books.seconds:.1f} s "
        f"(REST depth limit {books.depth_limit}, {books.total_weight:,} weight; Binance's "
        f"6,000/min allows it in {books.weight_limited_minimum_s:.1f} s of waiting at the least)"
    )
    console.print(
        f"rotation: {rotation.rotations} rotations and {rotation.reconnects} reconnects in "
        f"{rotation.seconds:.0f} s; {rotation.seen_twice_and_filtered} events seen on both "
        f"connections; in Kafka {rotation.duplicated_in_kafka} duplicated, "
        f"{rotation.dropped_in_kafka} dropped"
    )
    for r in scale:
        console.print(
            f"scale-out: {r.workers} worker process(es), {r.shards} shards: "
            f"{r.events_per_s:,.0f} events/s into Kafka"
        )
    console.print(
        f"failover: kill -9 of one of {failover.workers} workers ({failover.shards_moved} shards); "
        f"every shard streaming again after {failover.failover_s:.1f} s "
        f"(session timeout {failover.session_timeout_s:.0f} s)"
    )
    console.print(f"saved {save_report(report, output_dir)}")


def save_report(report: dict[str, object], output_dir: Path) -> Path:
    """``bench/results/bench-<when>.json``: the figures with the machine and versions."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"bench-{report['when']}.json".replace(":", "")
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def _print(
    console: Console,
    report: dict[str, object],
    pipeline: list[PipelineResult],
    codec: list[CodecResult],
) -> None:
    table = Table(title="Simulator -> gateway -> Kafka (acks=all), frame received to ack")
    for column in ("scenario", "events/s", "p50 ms", "p99 ms", "max ms", "events", "failed"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for r in pipeline:
        table.add_row(r.scenario, f"{r.events_per_s:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
                      f"{r.max_ms:.2f}", f"{r.events:,}", str(r.failed))  # fmt: skip
    console.print(table)
    codec_table = Table(title="Codec alone, one core: parse + normalize + Avro encode")
    codec_table.add_column("event kind")
    codec_table.add_column("events/s", justify="right")
    for c in codec:
        codec_table.add_row(c.event_kind, f"{c.events_per_s:,.0f}")
    console.print(codec_table)
    console.print(
        f"peak RSS of the gateway process: {report['peak_rss_mib']} MiB; machine: {report['machine']}"
    )
