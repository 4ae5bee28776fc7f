"""CPU per frame of the WebSocket client's read loop alone: the feeder, the client, a no-op handler.

The feeder (:mod:`gateway.benchmark.feed`) runs in its own process, so the CPU time measured here
(``time.process_time``, this process only) is the client's: websockets' receive, the read loop,
its watchdog and the handler call, with nothing behind the handler. At full speed the socket holds
many frames per read; ``--rate`` paces the feeder so that most reads find one or two.

``python -m gateway.benchmark.read_loop [--frames 200000] [--rate 0] [--runs 3]`` prints one JSON
line per run and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time

import orjson

from gateway.adapters.binance_ws import BinanceStreamClient
from gateway.settings import BinanceSettings


class Counter:
    """The no-op frame handler: counts, and notes the CPU clock at the warm-up and the end."""

    def __init__(self, warmup: int, frames: int) -> None:
        self.count = 0
        self._warmup, self._end = warmup, warmup + frames
        self.started_cpu_s = self.started_s = 0.0
        self.done = asyncio.Event()

    async def __call__(self, raw: bytes, received_at_us: int, received_ns: int) -> None:
        self.count += 1
        if self.count == self._warmup:
            self.started_cpu_s, self.started_s = time.process_time(), time.monotonic()
        elif self.count == self._end:
            self.done.set()


async def measure(port: int, frames: int, warmup: int) -> dict[str, float]:
    counter = Counter(warmup, frames)
    url = f"ws://127.0.0.1:{port}/stream?streams=btcusdt@aggTrade"
    client = BinanceStreamClient(url, counter, BinanceSettings(), name="bench")
    task = asyncio.create_task(client.run())
    try:
        await counter.done.wait()
        cpu_s, wall_s = (
            time.process_time() - counter.started_cpu_s,
            time.monotonic() - counter.started_s,
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {
        "frames": frames,
        "cpu_us_per_frame": round(cpu_s / frames * 1e6, 3),
        "frames_per_s": round(frames / wall_s),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--warmup", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=0.0, help="frames/s; 0 = full speed")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    feeder = subprocess.Popen(
        [sys.executable, "-m", "gateway.benchmark.feed", "--port", "0", "--rate", str(args.rate)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert feeder.stdout is not None
        port = orjson.loads(feeder.stdout.readline())["port"]
        results = []
        for _ in range(args.runs):
            result = asyncio.run(measure(port, args.frames, args.warmup))
            sys.stdout.write(orjson.dumps(result).decode() + "\n")
            results.append(result["cpu_us_per_frame"])
        sys.stdout.write(f"median CPU µs per frame: {statistics.median(results):.3f}\n")
    finally:
        feeder.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            feeder.wait(5)


if __name__ == "__main__":
    main(sys.argv[1:])
