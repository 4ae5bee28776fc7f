"""``gateway demo`` shows events within seconds and Ctrl-C leaves nothing running."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable

import psutil
import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.registry, pytest.mark.slow]


METRICS_AT = rb"metrics at http://127\.0\.0\.1:(\d+)/metrics"


class Demo:
    """A running ``gateway demo`` and what it has printed so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        self.process = process
        self.stdout = process.stdout
        self.output = b""

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    async def read_until(self, done: Callable[[bytes], bool], timeout_s: float = 90) -> None:
        """Read its output until ``done(output)``; it must not end before."""
        async with asyncio.timeout(timeout_s):
            while not done(self.output):
                chunk = await self.stdout.read(4096)
                assert chunk, self.text
                self.output += chunk

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    async def stop(self, signal_number: int, timeout_s: float = 60) -> int:
        """Send ``signal_number``; its exit code once it has printed everything and exited."""
        self.process.send_signal(signal_number)
        async with asyncio.timeout(timeout_s):
            self.output += await self.stdout.read()
            return await self.process.wait()


@contextlib.asynccontextmanager
async def running_demo(symbols: int) -> AsyncIterator[Demo]:
    """``gateway demo`` with ``symbols`` symbols; killed on leaving if it still runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", "--symbols", str(symbols), "--status-port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield Demo(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def acknowledged(output: bytes) -> int:
    """The last count of acknowledged records the demo printed (0 before the first)."""
    counts = re.findall(rb"gateway: ([\d,]+) acknowledged", output)
    return int(counts[-1].replace(b",", b"")) if counts else 0


async def test_demo_flows_then_stops_cleanly_on_ctrl_c() -> None:
    async with running_demo(3) as demo:
        await demo.read_until(lambda output: acknowledged(output) >= 50)
        children = demo.children()
        assert any("java" in c.name() for c in children)  # Kafka and the registry
        code = await demo.stop(signal.SIGINT)
    assert code == 0, demo.text
    assert "stopped cleanly" in demo.text
    assert "binance.spot.trade" in demo.text
    assert not alive(children)


async def test_a_closed_terminal_stops_the_jvms_and_status_is_on_loopback() -> None:
    """SIGHUP (the terminal closed) drains like Ctrl-C: no Kafka or registry JVM survives the
    demo. Metrics and probes listen on 127.0.0.1 only, at the address the demo prints."""
    children: list[psutil.Process] = []
    async with running_demo(2) as demo:
        await demo.read_until(lambda output: re.search(METRICS_AT, output) is not None)
        port = int(re.findall(METRICS_AT, demo.output)[0])
        process = psutil.Process(demo.process.pid)
        listening = [c for c in process.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
        assert [c.laddr.ip for c in listening if c.laddr.port == port] == ["127.0.0.1"]
        children = demo.children()
        assert any("java" in c.name() for c in children)
        await demo.stop(signal.SIGHUP)
    survivors = alive(children)
    for child in survivors:  # leave no JVM behind, even when the assertion below fails
        child.kill()
    assert survivors == [], demo.text
    assert "stopped cleanly" in demo.text


async def test_jvms_of_a_killed_demo_are_found_by_their_pid_files_and_stopped() -> None:
    """kill -9 leaves the demo no chance to stop its JVMs: they are orphans with pid files under
    .cache/demo/<demo pid>/, which `make kafka-down` (stack.stop_orphaned_demos) stops."""
    from gateway.infra.stack import DEMO_DIR, stop_orphaned_demos

    children: list[psutil.Process] = []
    try:
        async with running_demo(1) as demo:
            await demo.read_until(lambda output: b"metrics at http://" in output)
            children = [c for c in demo.children() if "java" in c.name()]
            assert len(children) == 2  # Kafka and the registry
            pid = demo.process.pid
            assert (DEMO_DIR / str(pid)).is_dir()
            demo.process.kill()
            await demo.process.wait()
            await asyncio.sleep(1)
            assert all(c.is_running() for c in children)  # orphaned, as the issue saw them
            assert await asyncio.to_thread(stop_orphaned_demos) == 2
            assert not (DEMO_DIR / str(pid)).exists()
            assert not alive(children)
    finally:
        for child in children:
            if child.is_running():
                child.kill()
