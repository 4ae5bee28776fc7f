"""A detached local Kafka (+ schema registry) that outlives the command that started it.

``make kafka-up`` / ``python -m gateway.infra up`` start it and ``gateway run --local-stack``
reuses it (or starts it). Pid files, logs and data live under ``.cache/local-stack/``.

``gateway demo`` runs a stack of its own under ``.cache/demo/<demo pid>/`` and stops it however
it ends; if the demo itself is killed (``kill -9``), its JVMs are orphans that ``make
kafka-down`` (and the next demo) find by those pid files and stop.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from gateway.infra import maven
from gateway.infra.kafka import KafkaCluster
from gateway.infra.process import WORKDIR_PROPERTY, pid_alive, pid_command_line, terminate_pids
from gateway.infra.registry import SchemaRegistry

STACK_DIR = maven.REPO_ROOT / ".cache" / "local-stack"
STATE_FILE = STACK_DIR / "stack.json"
KAFKA_DIR = STACK_DIR / "kafka"
REGISTRY_DIR = STACK_DIR / "registry"
# The -D property every JVM of the stack carries: proves a pid in a pid file is still ours.
STACK_MARKER = f"-D{WORKDIR_PROPERTY}={STACK_DIR}"
DEMO_DIR = maven.REPO_ROOT / ".cache" / "demo"
DEMO_MARKER = f"-D{WORKDIR_PROPERTY}={DEMO_DIR}"


@dataclass(frozen=True, slots=True)
class LocalStack:
    """Where the local stack listens."""

    bootstrap_servers: str
    registry_url: str | None
    nodes: int = 1


def start_local_stack(
    *, nodes: int = 1, port: int = 9092, registry_port: int = 8081, registry: bool = True
) -> LocalStack:
    """Start a fresh stack (an old one's data would need its old, random controller ports)."""
    stop_local_stack()  # leftovers of a stack that half-died
    shutil.rmtree(KAFKA_DIR, ignore_errors=True)
    shutil.rmtree(REGISTRY_DIR, ignore_errors=True)
    cluster = KafkaCluster(
        nodes, ports=[port + i for i in range(nodes)], work_dir=KAFKA_DIR, stop_at_exit=False
    )
    cluster.start()
    registry_url = None
    if registry:
        server = SchemaRegistry(port=registry_port, work_dir=REGISTRY_DIR, stop_at_exit=False)
        try:
            server.start()
        except BaseException:
            cluster.stop()
            raise
        registry_url = server.url
    stack = LocalStack(cluster.bootstrap_servers, registry_url, nodes)
    STATE_FILE.write_text(
        json.dumps(
            {
                "bootstrap_servers": stack.bootstrap_servers,
                "registry_url": registry_url,
                "nodes": nodes,
            },
            indent=2,
        )
        + "\n"
    )
    return stack


def running_stack() -> LocalStack | None:
    """The stack ``up`` started, if every one of its processes is still running."""
    pid_files = _pid_files()
    if not pid_files or not STATE_FILE.is_file():
        return None
    if not all((pid := _read_pid(f)) is not None and _is_ours(pid) for f in pid_files):
        return None
    state = json.loads(STATE_FILE.read_text())
    return LocalStack(state["bootstrap_servers"], state.get("registry_url"), state.get("nodes", 1))


def ensure_local_stack() -> LocalStack:
    """The running stack, or a new one (Kafka + registry on the default ports)."""
    maven.fetch_all()
    return running_stack() or start_local_stack()


def stack_processes() -> list[tuple[str, int | None, bool]]:
    """(name, pid, running) for every process the stack has a pid file for."""
    rows = []
    for pid_file in _pid_files():
        pid = _read_pid(pid_file)
        name = "registry" if pid_file.parent == REGISTRY_DIR else pid_file.parent.name
        rows.append((name, pid, pid is not None and _is_ours(pid)))
    return rows


def stop_local_stack() -> int:
    """Stop every JVM with a pid file under the stack dir; count those found.

    The registry first, then all Kafka nodes at once: stopped one by one, the last node would wait
    for a quorum that is already gone.
    """
    registry = [f for f in _pid_files() if f.parent == REGISTRY_DIR]
    kafka = [f for f in _pid_files() if f.parent != REGISTRY_DIR]
    stopped = 0
    for group in (registry, kafka):
        pids = [pid for pid in map(_read_pid, group) if pid is not None]
        stopped += terminate_pids(pids, marker=STACK_MARKER)
        for pid_file in group:
            pid_file.unlink(missing_ok=True)
    STATE_FILE.unlink(missing_ok=True)
    return stopped


def _running_pids() -> list[int]:
    pids = (_read_pid(f) for f in _pid_files())
    return [pid for pid in pids if pid is not None and _is_ours(pid)]


def _pid_files() -> list[Path]:
    return sorted([*KAFKA_DIR.glob("node-*/kafka.pid"), *REGISTRY_DIR.glob("registry.pid")])


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_ours(pid: int) -> bool:
    command = pid_command_line(pid)
    return command is not None and STACK_MARKER in command


def demo_work_dir() -> Path:
    """Where this process's demo keeps its JVMs' pid files, logs and data."""
    return DEMO_DIR / str(os.getpid())


def stop_orphaned_demos() -> int:
    """Stop the JVMs of demos whose own process is gone (killed before it could stop them);
    a running demo's are left alone. Returns how many JVMs were stopped."""
    stopped = 0
    for run in sorted(DEMO_DIR.glob("*")):
        owner = int(run.name) if run.name.isdigit() else None
        if owner is not None and owner != os.getpid() and pid_alive(owner):
            continue
        registry = [pid for f in run.glob("registry/*.pid") if (pid := _read_pid(f)) is not None]
        kafka = [pid for f in run.glob("kafka/node-*/*.pid") if (pid := _read_pid(f)) is not None]
        for pids in (registry, kafka):  # the registry first, as stop_local_stack says why
            stopped += terminate_pids(pids, marker=DEMO_MARKER)
        shutil.rmtree(run, ignore_errors=True)
    return stopped
