"""``gateway bench``: the gateway against a minimal reference pipeline, in one run, on a real broker.

Every figure is taken twice in the same run, for the gateway (``Gateway``, as ``gateway run``
builds it, one shard) and for the reference pipeline (:mod:`gateway.benchmark.reference`: the
least a bridge does, with the same Kafka producer settings and the same records), fed the same
frames by the same feeder (:mod:`gateway.benchmark.feed`, a process of its own) into one real
Kafka. Each run is a fresh process (:mod:`gateway.benchmark.probe`), so CPU time and peak RSS are
its own. On a shared machine the absolute numbers move with the neighbours' load; the
gateway / reference ratio of one run is the fair figure, which is why both are always measured
together, taking turns.

Per scenario: events/s into Kafka at full speed (median of the repeats), CPU µs per event, peak
RSS, and event → Kafka latency (p50, p99) at a paced rate. Then the start-up spread of 8 shards
on one coordinated process restarted on topics it filled, and the codec alone on one core.
``--quick`` runs the first and the 1,024-symbol scenarios once, with short windows (CI-sized);
``--extras`` adds the simulator-driven books, rotation, scale-out and fail-over figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

import orjson
from rich.console import Console
from rich.table import Table

from gateway.benchmark.codec import CASES as CODEC_CASES, frame as codec_frame, record_builder
from gateway.benchmark.resilience import measure_book_sync, measure_rotation
from gateway.benchmark.scale import measure_failover, measure_scale_out
from gateway.binance.messages import FrameParser
from gateway.infra.kafka import KafkaCluster
from gateway.infra.maven import fetch_all, kafka_version


@dataclass(frozen=True)
class CodecResult:
    event_kind: str
    events_per_s: float


@dataclass(frozen=True)
class Scenario:
    """One stream mix, fed to both pipelines at full speed and at ``paced_rate`` events/s."""

    name: str
    channels: tuple[str, ...]
    symbols: int
    paced_rate: float
    repeats: int = 1
    """Full-speed runs per pipeline; the table shows the median."""


SCENARIOS = (
    Scenario("aggTrade, 50 symbols", ("aggTrade",), 50, 10_000, repeats=3),
    Scenario("trade, 50 symbols", ("trade",), 50, 10_000),
    Scenario("depth@100ms diffs, 20 levels, 50 symbols", ("depth@100ms",), 50, 2_000),
    Scenario("kline_1m + ticker, 50 symbols", ("kline_1m", "ticker"), 50, 10_000),
    # Issue 16: peak RSS with 1,024 streams on one process (over several connections: URL length).
    Scenario("aggTrade, 1,024 symbols", ("aggTrade",), 1024, 10_000),
)
QUICK_SCENARIOS = (SCENARIOS[0], SCENARIOS[4])
SHARD_START = Scenario("8 shards on one process", ("aggTrade", "trade"), 200, 5_000)


@dataclass(frozen=True)
class Timing:
    """How long each measured run streams, and how many runs (see ``gateway.benchmark.probe``)."""

    warmup_s: float
    window_s: float
    quick: bool


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
        await _end(process)


async def _end(process: asyncio.subprocess.Process) -> None:
    """Ask a child to stop; kill it if it has not within 10 s."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def child(
    *args: str, stderr: IO[bytes] | int = asyncio.subprocess.DEVNULL
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A ``python -m ...`` child whose first stdout line is read by the caller; ended on exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )
    try:
        yield process
    finally:
        await _end(process)


@contextlib.asynccontextmanager
async def feeder(rate: float, streams: int, levels: int = 20) -> AsyncIterator[str]:
    """``gateway.benchmark.feed`` in its own process: its ``ws://`` URL."""
    async with child(
        "gateway.benchmark.feed", "--rate", str(rate), "--streams", str(streams),
        "--levels", str(levels),
    ) as process:  # fmt: skip
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line:
            raise RuntimeError("the benchmark feeder did not start")
        yield f"ws://127.0.0.1:{orjson.loads(line)['port']}"


async def probe(
    pipeline: str, feed: str, bootstrap: str, scenario: Scenario, timing: Timing,
    *, shards: int = 1, gc_tuned: bool = False, profile: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One measured run in a fresh process (``gateway.benchmark.probe``): its result."""
    args = [
        "gateway.benchmark.probe", pipeline, "--feed", feed, "--bootstrap", bootstrap,
        "--prefix", f"bench{time.time_ns()}", "--symbols", str(scenario.symbols),
        "--channels", ",".join(scenario.channels), "--shards", str(shards),
        "--warmup", str(timing.warmup_s), "--window", str(timing.window_s),
    ]  # fmt: skip
    if gc_tuned:
        args.append("--gc")
    if profile:
        args.append("--profile")
    with tempfile.TemporaryFile() as errors:
        async with child(*args, stderr=errors) as process:
            out, _ = await process.communicate()
        lines = out.decode().strip().splitlines()
        if process.returncode != 0 or not lines:
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(
                f"the {pipeline} run of {scenario.name!r} failed (exit {process.returncode}): "
                f"{said[0] if said else 'nothing on stderr'}"
            )
    result: dict[str, Any] = orjson.loads(lines[-1])
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


async def measure_scenario(
    scenario: Scenario, bootstrap: str, timing: Timing, *, compare_gc: bool
) -> dict[str, Any]:
    """Full speed (median of ``repeats``, the pipelines taking turns) and paced, both pipelines."""
    streams = scenario.symbols * len(scenario.channels)
    repeats = 1 if timing.quick else scenario.repeats
    full: dict[str, list[dict[str, Any]]] = {"gateway": [], "reference": []}
    if compare_gc:
        full["gateway, gc untuned"] = []
    async with feeder(0.0, streams) as feed:
        for turn in range(repeats):
            order = list(full) if turn % 2 == 0 else list(reversed(full))
            for variant in order:
                pipeline = variant.split(",")[0]
                gc_tuned = variant == "gateway"  # as `gateway run` tunes it
                full[variant].append(
                    await probe(pipeline, feed, bootstrap, scenario, timing, gc_tuned=gc_tuned)
                )
    paced: dict[str, dict[str, Any]] = {}
    async with feeder(scenario.paced_rate, streams) as feed:
        for pipeline in ("gateway", "reference"):
            paced[pipeline] = await probe(
                pipeline, feed, bootstrap, scenario, timing, gc_tuned=pipeline == "gateway"
            )
    return summarize(scenario, repeats, full, paced)


def summarize(
    scenario: Scenario,
    repeats: int,
    full: dict[str, list[dict[str, Any]]],
    paced: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """A scenario's figures: medians of the full-speed runs, the gateway / reference ratio of
    their rates, the paced runs as they are, and every run kept for the record."""
    summary = {
        variant: {
            "events_per_s": _median(runs, "events_per_s"),
            "cpu_us_per_event": _median(runs, "cpu_us_per_event"),
            "cores_used": _median(runs, "cores_used"),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        }
        for variant, runs in full.items()
    }
    return {
        "scenario": scenario.name,
        "channels": list(scenario.channels),
        "symbols": scenario.symbols,
        "repeats": repeats,
        "full_speed": summary,
        "ratio": round(
            summary["gateway"]["events_per_s"] / summary["reference"]["events_per_s"], 3
        ),
        "paced_rate": scenario.paced_rate,
        "paced": paced,
        "runs": full,
    }


async def measure_profile(bootstrap: str, timing: Timing) -> dict[str, Any]:
    """Where the gateway's CPU goes at full speed in the first scenario (one more run, sampled:
    :mod:`gateway.benchmark.sampler`): each cost centre's share and CPU µs per event."""
    scenario = SCENARIOS[0]
    async with feeder(0.0, scenario.symbols * len(scenario.channels)) as feed:
        run = await probe("gateway", feed, bootstrap, scenario, timing, gc_tuned=True, profile=True)
    per_event = run["cpu_us_per_event"]
    return {
        "scenario": scenario.name,
        "cpu_us_per_event": per_event,
        "events_per_s": run["events_per_s"],
        "centres": [
            {"centre": name, "share": share, "cpu_us_per_event": round(share * per_event, 2)}
            for name, share in run["profile"].items()
        ],
    }


async def measure_shard_start(bootstrap: str, timing: Timing) -> dict[str, Any]:
    """8 shards on one coordinated process, restarted on topics it filled: start spread."""
    scenario = SHARD_START
    async with feeder(scenario.paced_rate, scenario.symbols * len(scenario.channels)) as feed:
        result = await probe("gateway", feed, bootstrap, scenario, timing, shards=8, gc_tuned=True)
    starts = sorted(result["shard_start_s"].values())
    return {
        "scenario": scenario.name,
        "symbols": scenario.symbols,
        "channels": list(scenario.channels),
        "shards_streaming": len(starts),
        "first_s": starts[0] if starts else None,
        "last_s": starts[-1] if starts else None,
        "spread_s": round(starts[-1] - starts[0], 3) if starts else None,
        "peak_rss_mib": result["peak_rss_mib"],
        "events_per_s": result["events_per_s"],
    }


def measure_codec(seconds_per_kind: float = 0.5) -> list[CodecResult]:
    """Parse + normalize + Avro-encode on one core, per event kind (no I/O): frames/s."""
    builder = record_builder()
    results = []
    for name, market, stream in CODEC_CASES:
        raw = codec_frame(name, stream)
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
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "kafka": kafka_version(),
        **{pkg: version(pkg) for pkg in ("aiokafka", "websockets", "fastavro", "orjson", "uvloop")},
    }


async def run_bench(
    *, output_dir: Path, quick: bool = False, extras: bool = False, compare_gc: bool = True
) -> Path:
    """Every scenario through a real broker, for the gateway and the reference; saved as JSON."""
    console = Console(width=max(Console().width, 150))  # the tables are wide; logs too
    machine = _machine()  # the load average before the benchmark adds its own
    timing = Timing(warmup_s=2.0, window_s=3.0, quick=True) if quick else Timing(3.0, 8.0, False)
    codec = [] if quick else measure_codec()
    with console.status("fetching and starting Kafka"):
        await asyncio.to_thread(fetch_all)
        kafka = KafkaCluster(1, quick_jit=False)
        await asyncio.to_thread(kafka.start)
    bootstrap = kafka.bootstrap_servers
    try:
        scenarios = []
        for index, scenario in enumerate(QUICK_SCENARIOS if quick else SCENARIOS):
            with console.status(f"{scenario.name}: gateway and reference"):
                scenarios.append(
                    await measure_scenario(
                        scenario, bootstrap, timing, compare_gc=compare_gc and index == 0
                    )
                )
        with console.status("8 shards on one process: start-up spread"):
            shard_start = await measure_shard_start(bootstrap, timing)
        with console.status("where the gateway's CPU goes (sampled)"):
            profile = await measure_profile(bootstrap, timing)
        extra = await _extras(console, bootstrap) if extras else {}
    finally:
        await asyncio.to_thread(kafka.stop)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench" + (" QUICK=1" if quick else ""),
        "machine": machine,
        "timing": asdict(timing),
        "kafka_producer": "acks=all, idempotent, lz4, linger_ms 5 (both pipelines)",
        "scenarios": scenarios,
        "shard_start": shard_start,
        "profile": profile,
        "codec": [asdict(r) for r in codec],
        **extra,
    }
    _print(console, report)
    path = save_report(report, output_dir)
    console.print(f"saved {path}")
    return path


async def _extras(console: Console, bootstrap: str) -> dict[str, Any]:
    """Books, rotation, scale-out and fail-over against the simulator (``--extras``)."""
    symbols = 20
    with console.status("books: syncing 1,000 order books within the REST weight limit"):
        books = await measure_book_sync(bootstrap)
    with console.status("rotation: make-before-break every second for 10 s"):
        rotation = await measure_rotation(bootstrap)
    async with simulator_process(symbols, 0.0) as (ws_url, rest_url):
        with console.status("scale-out: 1, 2 and 3 worker processes sharing the shards"):
            scale = await measure_scale_out(
                bootstrap, ws_url, rest_url, symbols=symbols, duration_s=10.0
            )
    async with simulator_process(symbols, 2000.0 / symbols) as (ws_url, rest_url):
        with console.status("failover: kill -9 of one worker of three"):
            failover = await measure_failover(bootstrap, ws_url, rest_url, symbols=symbols)
    return {
        "book_sync": asdict(books),
        "rotation": asdict(rotation),
        "scale_out": [asdict(r) for r in scale],
        "failover": asdict(failover),
    }


def save_report(report: dict[str, Any], output_dir: Path) -> Path:
    """``bench/results/bench-<when>.json``: the figures with the machine and versions."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"bench-{report['when']}.json".replace(":", "")
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def _print(console: Console, report: dict[str, Any]) -> None:
    table = Table(title="Feeder -> pipeline -> Kafka (acks=all, lz4, idempotent), same run")
    for column in ("scenario", "pipeline", "events/s", "CPU µs/event", "cores", "peak RSS MiB",
                   "paced rate", "p50 ms", "p99 ms", "CPU µs/event paced"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("scenario", "pipeline") else "right")
    for s in report["scenarios"]:
        for variant, full in s["full_speed"].items():
            paced = s["paced"].get(variant)
            table.add_row(
                s["scenario"], variant, f"{full['events_per_s']:,.0f}",
                f"{full['cpu_us_per_event']:.1f}", f"{full['cores_used']:.2f}",
                f"{full['peak_rss_mib']:.0f}",
                f"{s['paced_rate']:,.0f}" if paced else "",
                f"{paced['p50_ms']:.0f}" if paced else "", f"{paced['p99_ms']:.0f}" if paced else "",
                f"{paced['cpu_us_per_event']:.1f}" if paced else "",
            )  # fmt: skip
        table.add_row(s["scenario"], "gateway / reference", f"{s['ratio']:.2f}", "", "", "", "",
                      "", "", "", end_section=True)  # fmt: skip
    console.print(table)
    console.print(
        "cores: CPU seconds per second the process got at full speed; below 1, the machine's "
        "other load took the rest, so compare CPU µs/event and the ratio, not events/s alone."
    )
    start = report["shard_start"]
    console.print(
        f"{start['scenario']}: {start['shards_streaming']} of 8 shards streaming "
        f"{start['first_s']} s to {start['last_s']} s after the restart (spread "
        f"{start['spread_s']} s); peak RSS {start['peak_rss_mib']} MiB"
    )
    profile = report.get("profile")
    if profile:
        profile_table = Table(
            title=f"Where the gateway's CPU goes: {profile['scenario']}, full speed, "
            f"{profile['cpu_us_per_event']:.1f} CPU µs/event (sampled)"
        )
        for column in ("cost centre", "share", "CPU µs/event"):
            profile_table.add_column(column, justify="left" if column == "cost centre" else "right")
        for c in profile["centres"]:
            profile_table.add_row(c["centre"], f"{c['share']:.1%}", f"{c['cpu_us_per_event']:.1f}")
        console.print(profile_table)
    if report["codec"]:
        codec_table = Table(title="Codec alone, one core: parse + normalize + Avro encode")
        codec_table.add_column("event kind")
        codec_table.add_column("events/s", justify="right")
        for c in report["codec"]:
            codec_table.add_row(c["event_kind"], f"{c['events_per_s']:,.0f}")
        console.print(codec_table)
    if "book_sync" in report:
        _print_extras(console, report)
    console.print(f"machine: {report['machine']}")


def _print_extras(console: Console, report: dict[str, Any]) -> None:
    books, rotation, failover = report["book_sync"], report["rotation"], report["failover"]
    console.print(
        f"order books: {books['books']:,} synced in {books['seconds']:.1f} s (REST depth limit "
        f"{books['depth_limit']}, {books['total_weight']:,} weight)"
    )
    console.print(
        f"rotation: {rotation['rotations']} rotations in {rotation['seconds']:.0f} s; in Kafka "
        f"{rotation['duplicated_in_kafka']} duplicated, {rotation['dropped_in_kafka']} dropped"
    )
    for r in report["scale_out"]:
        console.print(
            f"scale-out: {r['workers']} worker process(es), {r['shards']} shards: "
            f"{r['events_per_s']:,.0f} events/s into Kafka"
        )
    console.print(
        f"failover: kill -9 of one of {failover['workers']} workers; every shard streaming "
        f"again after {failover['failover_s']:.1f} s (session timeout "
        f"{failover['session_timeout_s']:.0f} s)"
    )
