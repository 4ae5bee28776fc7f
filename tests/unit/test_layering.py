"""The protocol core and the record layer stay sans-I/O: no sockets, no event loop, no Kafka."""

import ast
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
FORBIDDEN = {"asyncio", "websockets", "aiokafka", "aiohttp", "socket", "time"}


@pytest.mark.parametrize("package", ["binance", "records", "coordination"])
def test_pure_packages_import_no_io(package):
    offenders = []
    for path in (GATEWAY / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
            offenders += [
                f"{path.name}: gateway.{n.split('.')[1]}"
                for n in names
                if n.startswith(("gateway.adapters", "gateway.worker", "gateway.pipeline"))
            ]
    assert offenders == []


def test_simulator_is_an_independent_oracle():
    # It may share nothing with the gateway's parser or record code, or one bug hides in both.
    offenders = []
    for path in (GATEWAY / "simulator").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith(
                    (
                        "gateway.binance.messages",
                        "gateway.records",
                        "gateway.adapters",
                        "gateway.pipeline",
                    )
                )
            ):
                offenders.append(f"{path.name}: {node.module}")
    assert offenders == []
