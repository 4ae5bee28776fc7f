"""``python -m gateway.simulator`` as a process: a futures market with a fault mix."""

from __future__ import annotations

import asyncio
import sys

import orjson
from websockets.asyncio.client import connect


async def test_the_module_serves_a_futures_market_and_prints_its_urls() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.simulator", "--market", "usdm", "--symbols", "2",
        "--rate", "50", "--fault-rate", "1", "--faults", "extra_field",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        urls = orjson.loads(await asyncio.wait_for(process.stdout.readline(), 20))
        async with connect(f"{urls['ws_url']}/market/ws/btcusdt@aggTrade") as ws:
            frame = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            assert frame["e"] == "aggTrade" and "nq" in frame
    finally:
        process.terminate()
        await process.wait()
