"""``gateway demo`` shows events within seconds and Ctrl-C leaves nothing running."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import psutil
import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.registry, pytest.mark.slow]


async def test_demo_flows_then_stops_cleanly_on_ctrl_c():
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", "--symbols", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    output = b""
    acked = 0
    try:
        async with asyncio.timeout(90):
            while acked < 50:
                chunk = await process.stdout.read(4096)
                assert chunk, output.decode(errors="replace")
                output += chunk
                counts = re.findall(rb"gateway: ([\d,]+) acknowledged", output)
                acked = int(counts[-1].replace(b",", b"")) if counts else 0
        children = psutil.Process(process.pid).children(recursive=True)
        assert any("java" in c.name() for c in children)  # Kafka and the registry
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            output += await process.stdout.read()
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    assert code == 0, text
    assert "stopped cleanly" in text
    assert "binance.spot.trade" in text
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
