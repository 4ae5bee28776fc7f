"""A recorded capture replayed over a socket at N x speed, filtered by stream."""

from __future__ import annotations

import time

import orjson
from websockets.asyncio.client import connect

from gateway.simulator.replay import ReplayServer, load_capture


def capture(count: int, gap_ms: int) -> list[str]:
    lines = []
    for i in range(count):
        stream = "btcusdt@trade" if i % 2 == 0 else "ethusdt@trade"
        frame = {
            "stream": stream,
            "data": {"e": "trade", "E": 1_700_000_000_000 + i * gap_ms, "t": i},
        }
        lines.append(orjson.dumps({"frame": orjson.dumps(frame).decode()}).decode())
    return lines


async def test_a_capture_is_replayed_in_order_at_n_times_speed() -> None:
    frames = load_capture(capture(6, gap_ms=200))  # 1 s of recording
    async with ReplayServer(frames, speed=5) as server:
        started = time.monotonic()
        async with connect(f"{server.url}/stream?streams=btcusdt@trade") as ws:
            received = [orjson.loads(message) async for message in ws]
        elapsed = time.monotonic() - started
    assert [frame["data"]["t"] for frame in received] == [0, 2, 4]
    assert 0.12 <= elapsed < 1.0  # 0.8 s recorded between the first and last kept frame, / 5
