"""Gateway workers as real processes (``gateway run``): for scale-out tests and benchmarks.

Each worker runs the same configuration file with its own ``GATEWAY_GATEWAY_ID`` and status
port, as the pods of a Deployment do; callers watch them through ``/readyz``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from gateway.coordination.plan import shard_ids
from gateway.settings import GatewaySettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, config: Mapping[str, Any]) -> list[str]:
    """Write the workers' shared configuration; returns the shard layout it gives."""
    path.write_text(yaml.safe_dump(dict(config)))
    return list(shard_ids(GatewaySettings.model_validate(config).binance))


class WorkerProcess:
    """One ``gateway run`` process."""

    def __init__(self, worker_id: str, config: Path, log_dir: Path) -> None:
        self.worker_id = worker_id
        self.config = config
        self.port = free_port()
        self.log_path = log_dir / f"{worker_id}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "GATEWAY_GATEWAY_ID": self.worker_id,
            "GATEWAY_STATUS__PORT": str(self.port),
            "GATEWAY_STATUS__HOST": "127.0.0.1",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(self.config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def status(self) -> dict[str, Any] | None:
        """The worker's ``/readyz`` body, or None when it does not answer."""
        try:
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{self.port}/readyz"
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    body: dict[str, Any] = await response.json()
                    return body
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return await response.text()

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait_exit(self, timeout_s: float) -> int:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.worker_id} still running after {timeout_s}s")
            await asyncio.sleep(0.1)
        return self.process.returncode

    def stop_now(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def streaming_shards(workers: Iterable[WorkerProcess]) -> dict[str, list[str]]:
    """Shard id → the workers that report it held and every connection of it up."""
    holders: dict[str, list[str]] = defaultdict(list)
    for worker in workers:
        body = await worker.status() if worker.alive else None
        if body is None:
            continue
        for shard, health in body.get("shards", {}).items():
            connections = health.get("connections")
            if connections is not None and all(connections.values()):
                holders[shard].append(worker.worker_id)
    return holders


async def wait_for_exclusive_ownership(
    workers: list[WorkerProcess], layout: list[str], timeout_s: float, *, shared: bool = False
) -> float:
    """Wait until every shard streams on exactly one live worker (and, if ``shared``, every
    live worker streams some); returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        holders = await streaming_shards(workers)
        busy = {worker for held in holders.values() for worker in held}
        everyone = not shared or busy == {w.worker_id for w in workers if w.alive}
        exclusive = all(len(h) == 1 for h in holders.values())
        if sorted(holders) == sorted(layout) and exclusive and everyone:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            missing = sorted(set(layout) - holders.keys())
            doubled = {s: h for s, h in holders.items() if len(h) > 1}
            raise AssertionError(f"after {timeout_s}s: unheld {missing}, doubled {doubled}")
        for worker in workers:
            assert (
                worker.alive
                or worker.process is None
                or worker.process.returncode
                in (
                    0,
                    -signal.SIGKILL,
                )
            ), worker.log()[-3000:]
        await asyncio.sleep(0.25)
