"""``gateway demo`` shows events within seconds and Ctrl-C leaves nothing running."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import psutil
import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.registry, pytest.mark.slow]


async def test_demo_flows_then_stops_cleanly_on_ctrl_c() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", "--symbols", "3", "--status-port", "0",
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


async def test_a_closed_terminal_stops_the_jvms_and_status_is_on_loopback() -> None:
    """SIGHUP (the terminal closed) drains like Ctrl-C: no Kafka or registry JVM survives the
    demo. Metrics and probes listen on 127.0.0.1 only, at the address the demo prints."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", "--symbols", "2", "--status-port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    output = b""
    children: list[psutil.Process] = []
    try:
        async with asyncio.timeout(90):
            while not re.search(rb"metrics at http://127\.0\.0\.1:(\d+)/metrics", output):
                chunk = await process.stdout.read(4096)
                assert chunk, output.decode(errors="replace")
                output += chunk
        port = int(re.findall(rb"metrics at http://127\.0\.0\.1:(\d+)/metrics", output)[0])
        demo = psutil.Process(process.pid)
        listening = [c for c in demo.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
        assert [c.laddr.ip for c in listening if c.laddr.port == port] == ["127.0.0.1"]
        children = demo.children(recursive=True)
        assert any("java" in c.name() for c in children)
        process.send_signal(signal.SIGHUP)
        async with asyncio.timeout(60):
            output += await process.stdout.read()
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    survivors = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    for child in survivors:  # leave no JVM behind, even when the assertion below fails
        child.kill()
    assert survivors == [], output.decode(errors="replace")
    assert "stopped cleanly" in output.decode(errors="replace")


async def test_jvms_of_a_killed_demo_are_found_by_their_pid_files_and_stopped() -> None:
    """kill -9 leaves the demo no chance to stop its JVMs: they are orphans with pid files under
    .cache/demo/<demo pid>/, which `make kafka-down` (stack.stop_orphaned_demos) stops."""
    from gateway.infra.stack import DEMO_DIR, stop_orphaned_demos

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", "--symbols", "1", "--status-port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    output = b""
    children: list[psutil.Process] = []
    try:
        async with asyncio.timeout(90):
            while b"metrics at http://" not in output:
                chunk = await process.stdout.read(4096)
                assert chunk, output.decode(errors="replace")
                output += chunk
        children = [
            c for c in psutil.Process(process.pid).children(recursive=True) if "java" in c.name()
        ]
        assert len(children) == 2  # Kafka and the registry
        assert (DEMO_DIR / str(process.pid)).is_dir()
        process.kill()
        await process.wait()
        await asyncio.sleep(1)
        assert all(c.is_running() for c in children)  # orphaned, as the issue saw them
        assert await asyncio.to_thread(stop_orphaned_demos) == 2
        assert not (DEMO_DIR / str(process.pid)).exists()
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for child in children:
            if child.is_running():
                child.kill()
