"""Measure how many events per second the simulator delivers to one fast reader.

``python -m gateway.simulator.bench [--seconds 5] [--symbols BTCUSDT,ETHUSDT,BNBUSDT]``

The simulator runs in a child process (``python -m gateway.simulator --rate 0``) so that it does
not share a CPU with the reader; the reader is a plain websockets client on the combined stream
of every trade and aggTrade stream, counting frames as fast as it can receive them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

import orjson
import psutil
from websockets.asyncio.client import connect

from gateway.simulator.config import DEFAULT_SYMBOLS

_CHANNELS = ("trade", "aggTrade")


async def _start_simulator(
    symbols: str, use_uvloop: bool
) -> tuple[asyncio.subprocess.Process, str]:
    args = [sys.executable, "-m", "gateway.simulator", "--rate", "0", "--symbols", symbols]
    if use_uvloop:
        args.append("--uvloop")
    process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    urls = orjson.loads(await process.stdout.readline())
    return process, str(urls["ws_url"])


@dataclass(frozen=True, slots=True)
class Measurement:
    """Frames received, and CPU seconds each side spent, over ``elapsed_s``."""

    frames: int
    elapsed_s: float
    reader_cpu_s: float
    simulator_cpu_s: float


async def _count_frames(url: str, seconds: float, simulator: psutil.Process) -> Measurement:
    async with connect(url, max_queue=1024, compression=None) as websocket:
        await websocket.recv()  # the first frame: the simulator is trading
        frames, started = 0, time.perf_counter()
        reader_cpu, simulator_cpu = time.process_time(), _cpu_s(simulator)
        deadline = started + seconds
        while time.perf_counter() < deadline:
            for _ in range(1000):
                await websocket.recv(decode=False)
            frames += 1000
        return Measurement(
            frames=frames,
            elapsed_s=time.perf_counter() - started,
            reader_cpu_s=time.process_time() - reader_cpu,
            simulator_cpu_s=_cpu_s(simulator) - simulator_cpu,
        )


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def measure(symbols: str, seconds: float, use_uvloop: bool) -> float:
    """Events per second received by one reader; prints the details."""
    process, ws_url = await _start_simulator(symbols, use_uvloop)
    try:
        names = [f"{s.lower()}@{c}" for s in symbols.split(",") for c in _CHANNELS]
        url = f"{ws_url}/stream?streams={'/'.join(names)}"
        result = await _count_frames(url, seconds, psutil.Process(process.pid))
    finally:
        process.terminate()
        await process.wait()
    rate = result.frames / result.elapsed_s
    print(  # noqa: T201 - the script's output
        f"{len(names)} streams, {result.frames} frames in {result.elapsed_s:.2f} s:"
        f" {rate:,.0f} events/s; CPU busy: simulator"
        f" {result.simulator_cpu_s / result.elapsed_s:.0%}, reader"
        f" {result.reader_cpu_s / result.elapsed_s:.0%};"
        # Independent of other load on the machine: what one fully busy core would deliver.
        f" {result.frames / max(result.simulator_cpu_s, 1e-9):,.0f} events per simulator CPU-second"
    )
    return rate


def main() -> None:
    """Parse arguments and run one measurement."""
    parser = argparse.ArgumentParser(prog="python -m gateway.simulator.bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS))
    parser.add_argument("--uvloop", action="store_true", help="run the simulator on uvloop")
    args = parser.parse_args()
    asyncio.run(measure(args.symbols, args.seconds, args.uvloop))


if __name__ == "__main__":
    main()
