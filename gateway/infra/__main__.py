"""``python -m gateway.infra``: fetch the artifacts, or run a detached local Kafka + registry.

    python -m gateway.infra fetch [--force]
    python -m gateway.infra up [--nodes N] [--no-registry] [--port 9092] [--registry-port 8081]
    python -m gateway.infra status
    python -m gateway.infra down

``up`` leaves the JVMs running after it exits; their pid files, logs and data live under
``.cache/local-stack/``. Each ``up`` starts a fresh (empty) cluster; ``down`` stops it and keeps
the logs. ``up`` and ``status`` print ``KAFKA_BOOTSTRAP=`` / ``SCHEMA_REGISTRY_URL=`` lines, the
variables the test suite and the gateway read.
"""

from __future__ import annotations

import argparse
import logging
import sys

from gateway.errors import InfraError
from gateway.infra import maven, stack


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        code: int = args.command(args)
    except InfraError as exc:
        _out(f"error: {exc}", err=True)
        return 1
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.infra", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    fetch = commands.add_parser("fetch", help="fetch the Kafka jars and the registry with mvn")
    fetch.add_argument("--force", action="store_true", help="fetch again even if present")
    fetch.set_defaults(command=_fetch)

    up = commands.add_parser("up", help="start a detached local Kafka (+ registry)")
    up.add_argument("--nodes", type=int, default=1, help="Kafka nodes (default 1)")
    up.add_argument("--no-registry", action="store_true", help="do not start the registry")
    up.add_argument("--port", type=int, default=9092, help="first node's port; node i gets +i")
    up.add_argument("--registry-port", type=int, default=8081, help="schema registry port")
    up.set_defaults(command=_up)

    commands.add_parser("down", help="stop what up started").set_defaults(command=_down)
    commands.add_parser("status", help="show what up started").set_defaults(command=_status)
    return parser


def _fetch(args: argparse.Namespace) -> int:
    maven.fetch_all(force=args.force)
    _out(f"Kafka jars:   {maven.KAFKA_LIBS_DIR}")
    _out(f"registry app: {maven.APICURIO_RUNNER_JAR}")
    return 0


def _up(args: argparse.Namespace) -> int:
    if stack.running_stack() is not None or any(alive for _, _, alive in stack.stack_processes()):
        _out("a local stack is already running; `python -m gateway.infra down` stops it")
        return _status(args)
    started = stack.start_local_stack(
        nodes=args.nodes,
        port=args.port,
        registry_port=args.registry_port,
        registry=not args.no_registry,
    )
    _print_addresses(started)
    return 0


def _down(args: argparse.Namespace) -> int:
    stopped = stack.stop_local_stack() + stack.stop_orphaned_demos()
    _out(f"stopped {stopped} process(es)" if stopped else "no local stack was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    processes = stack.stack_processes()
    if not processes:
        _out("no local stack is running")
        return 1
    for name, pid, alive in processes:
        _out(f"{name:<10} pid {pid}: {'running' if alive else 'NOT RUNNING'}")
    running = stack.running_stack()
    if running is not None:
        _print_addresses(running)
    return 0 if running is not None else 1


def _print_addresses(running: stack.LocalStack) -> None:
    _out(f"KAFKA_BOOTSTRAP={running.bootstrap_servers}")
    if running.registry_url is not None:
        _out(f"SCHEMA_REGISTRY_URL={running.registry_url}")


def _out(line: str, *, err: bool = False) -> None:
    # The CLI's output proper (addresses, status), so print rather than logging.
    print(line, file=sys.stderr if err else sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
