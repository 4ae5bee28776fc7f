"""``python -m gateway.infra.image smoke IMAGE``: run the gateway's image against a local Kafka and
the simulator, locked down as Kubernetes runs it, and check what it did.

The container gets the host's network (everything listens on loopback), a read-only root file
system with an in-memory ``/tmp`` (as the Deployment's emptyDir), no capabilities, no privilege
escalation, and the image's own user. The smoke run passes when the gateway is ready, its trades
reach Kafka with contiguous trade ids per symbol, it runs as a non-root numeric uid that cannot
write outside ``/tmp``, its start-up line says "record writer: compiled" (the image ships
gateway/records/native_writer.pyx built, not the slower pure-Python writer), and ``docker stop``
(SIGTERM) drains it: exit code 0 and its "stopped" line with no failed record, and the trades read
back afterwards are still contiguous. ``deploy/docker/smoke.sh`` (``make image-smoke``) builds the
image first and runs this; it prints what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from gateway.consumers.reader import RecordReader
from gateway.errors import InfraError
from gateway.infra.kafka import KafkaCluster
from gateway.infra.process import LOOPBACK, reserve_ports
from gateway.simulator.config import SimulatorConfig, simulated_symbols
from gateway.simulator.exchange import ExchangeSimulator

log = logging.getLogger(__name__)

PREFIX = "smoke"
CONFIG_DIR = "/etc/binance-gateway"
STOP_GRACE_S = 30
_STOPPED = re.compile(r"stopped: (\d+) records acknowledged, (\d+) failed")
_WRITER = re.compile(r"record writer: (compiled|pure Python)")


@dataclass
class SmokeResult:
    image: str
    user: str
    uid: int
    root_writable: bool
    capabilities: str
    """The gateway process's effective capability set (CapEff), hexadecimal: none is all zeros."""
    no_new_privileges: bool
    ready_s: float
    trades: int
    stop_s: float
    exit_code: int
    acknowledged: int
    failed: int
    record_writer: str
    """What the start-up line says serves: "compiled", "pure Python" or "not logged"."""

    def problems(self) -> list[str]:
        found = []
        if self.uid == 0:
            found.append("runs as root")
        if self.root_writable:
            found.append("the root file system is writable")
        if int(self.capabilities, 16) != 0:
            found.append(f"runs with capabilities {self.capabilities}")
        if not self.no_new_privileges:
            found.append("may gain privileges (no_new_privs is off)")
        if self.exit_code != 0:
            found.append(f"exit code {self.exit_code} after docker stop")
        if self.failed:
            found.append(f"{self.failed} records failed")
        if self.record_writer != "compiled":
            found.append(f"record writer: {self.record_writer}, not the compiled one")
        return found


@dataclass
class Output:
    code: int
    stdout: str
    stderr: str


async def run_docker(*args: str, limit_s: float = 120.0) -> Output:
    process = await asyncio.create_subprocess_exec(
        "docker", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise InfraError(f"docker {' '.join(args[:2])} took over {limit_s:.0f} s") from None
    assert process.returncode is not None
    return Output(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def docker(*args: str, limit_s: float = 120.0, check: bool = True) -> str:
    result = await run_docker(*args, limit_s=limit_s)
    if check and result.code != 0:
        raise InfraError(f"docker {' '.join(args[:2])} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout.strip()


def write_config(directory: Path, bootstrap: str, simulator: ExchangeSimulator, port: int) -> None:
    config = {
        "binance": {
            "markets": {
                "spot": {
                    "symbols": list(simulator.config.symbols),
                    "channels": ["trade", "aggTrade", "bookTicker", "depth@100ms"],
                    "stream_url": simulator.ws_url,
                    "rest_url": simulator.rest_url,
                }
            }
        },
        "kafka": {
            "bootstrap_servers": bootstrap,
            "topic_prefix": PREFIX,
            "partitions": 1,
            "replication_factor": 1,
        },
        "status": {"host": LOOPBACK, "port": port},
        "log": {"level": "INFO", "json": True},
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    # The container's user is not the file's owner: world-readable, as a ConfigMap is.
    directory.chmod(0o755)
    path.chmod(0o644)


async def wait_ready(port: int, container: str, timeout_s: float) -> float:
    began = time.monotonic()
    url = f"http://{LOOPBACK}:{port}/readyz"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() - began < timeout_s:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return time.monotonic() - began
            state = await docker("inspect", "-f", "{{.State.Running}}", container, check=False)
            if state != "true":
                raise InfraError(f"the container exited:\n{await _tail_logs(container)}")
            await asyncio.sleep(0.5)
    raise InfraError(f"not ready within {timeout_s:.0f} s:\n{await _tail_logs(container)}")


async def _first_records(topic: str, bootstrap: str, count: int, timeout_s: float) -> None:
    # Not read_all: its settle phase waits for a quiet topic, and a live stream is never quiet.
    seen = 0
    try:
        async with (
            asyncio.timeout(timeout_s),
            RecordReader([topic], bootstrap_servers=bootstrap) as reader,
        ):
            async for _ in reader.records():
                seen += 1
                if seen >= count:
                    return
    except TimeoutError:
        raise InfraError(f"{seen} of {count} records in {topic} after {timeout_s:.0f} s") from None


async def _tail_logs(container: str) -> str:
    output = await run_docker("logs", container)
    return (output.stdout + output.stderr)[-3000:]


def record_writer_in(logs: str) -> str:
    """What gateway run's start-up line (gateway.commands.run.record_writer) says serves."""
    found = _WRITER.search(logs)
    return found[1] if found else "not logged"


def contiguous_trades(values: Sequence[dict[str, object]]) -> int:
    """How many trades, after checking each symbol's trade ids have no gap and no repeat."""
    ids: dict[str, list[int]] = defaultdict(list)
    for value in values:
        trade_id = value["trade_id"]
        assert isinstance(trade_id, int)
        ids[str(value["symbol"])].append(trade_id)
    for symbol, seen in ids.items():
        if seen != list(range(seen[0], seen[0] + len(seen))):
            raise InfraError(f"{symbol}'s trade ids are not contiguous: {seen[:20]}...")
    return len(values)


@contextlib.asynccontextmanager
async def local_kafka_and_simulator(symbols: int) -> AsyncIterator[tuple[str, ExchangeSimulator]]:
    cluster = await asyncio.to_thread(KafkaCluster(1).start)
    try:
        config = SimulatorConfig(
            symbols=simulated_symbols(symbols), trades_per_second_per_symbol=20.0, seed=1
        )
        async with ExchangeSimulator(config) as simulator:
            yield cluster.bootstrap_servers, simulator
    finally:
        await asyncio.to_thread(cluster.stop)


async def smoke(image: str, *, symbols: int = 3, trades: int = 200) -> SmokeResult:
    """Run ``image`` against a fresh local Kafka and the simulator; raises InfraError if it fails."""
    name = f"binance-gateway-smoke-{os.getpid()}"
    async with local_kafka_and_simulator(symbols) as (bootstrap, simulator):
        with tempfile.TemporaryDirectory(prefix="gateway-smoke-") as tmp:
            [port] = reserve_ports([], 1)
            write_config(Path(tmp), bootstrap, simulator, port)
            await docker(
                "run", "--detach", "--name", name, "--network", "host",
                "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=16m",
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--volume", f"{tmp}:{CONFIG_DIR}:ro", image,
            )  # fmt: skip
            try:
                return await _check(image, name, bootstrap, port, trades)
            finally:
                await docker("rm", "--force", name, check=False)


async def _check(image: str, name: str, bootstrap: str, port: int, trades: int) -> SmokeResult:
    log.info("container %s started; waiting for /readyz", name)
    ready_s = await wait_ready(port, name, timeout_s=90)
    user = await docker("inspect", "-f", "{{.Config.User}}", image)
    uid = int(await docker("exec", name, "python", "-c", "import os; print(os.getuid())"))
    probe = await run_docker("exec", name, "python", "-c", "open('/opt/venv/probe', 'w')")
    root_writable = probe.code == 0
    status = dict(
        line.split(":\t", 1)
        for line in (await docker("exec", name, "cat", "/proc/1/status")).splitlines()
        if ":\t" in line
    )
    topic = f"{PREFIX}.spot.trade"
    log.info("ready in %.1f s; waiting for %d trades in %s", ready_s, trades, topic)
    await _first_records(topic, bootstrap, trades, timeout_s=60)
    log.info("trades are flowing; docker stop")

    began = time.monotonic()
    await docker("stop", "--time", str(STOP_GRACE_S), name, limit_s=STOP_GRACE_S + 30)
    stop_s = time.monotonic() - began
    exit_code = int(await docker("inspect", "-f", "{{.State.ExitCode}}", name))
    output = await run_docker("logs", name)
    logs = output.stdout + output.stderr
    stopped = _STOPPED.search(logs)
    if stopped is None:
        raise InfraError(f"no 'stopped' line after docker stop:\n{logs[-3000:]}")
    acknowledged, failed = int(stopped[1]), int(stopped[2])
    # After the drain: the trades read back whole, none lost or repeated in the last batches.
    # (Not read_all(expected=1): it drops the rest of the batch that holds the first record.)
    async with asyncio.timeout(120), RecordReader([topic], bootstrap_servers=bootstrap) as reader:
        everything = [record.value async for record in reader.records(idle_timeout_s=3)]
    count = contiguous_trades(everything)
    if count < trades:
        raise InfraError(f"{count} trades in {topic} after the drain, fewer than the {trades} seen")
    return SmokeResult(
        image=image,
        user=user,
        uid=uid,
        root_writable=root_writable,
        capabilities=status["CapEff"].strip(),
        no_new_privileges=status.get("NoNewPrivs", "0").strip() == "1",
        ready_s=ready_s,
        trades=count,
        stop_s=stop_s,
        exit_code=exit_code,
        acknowledged=acknowledged,
        failed=failed,
        record_writer=record_writer_in(logs),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.infra.image", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("smoke", help="run IMAGE against a local Kafka and the simulator")
    run.add_argument("image")
    run.add_argument("--symbols", type=int, default=3)
    run.add_argument("--trades", type=int, default=200, help="trades to wait for in Kafka")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    try:
        result = asyncio.run(smoke(args.image, symbols=args.symbols, trades=args.trades))
    except InfraError as exc:
        sys.stderr.write(f"image smoke run FAILED: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(result.__dict__, indent=2) + "\n")
    problems = result.problems()
    for problem in problems:
        sys.stderr.write(f"image smoke run FAILED: {problem}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
