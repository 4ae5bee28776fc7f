"""Guards of the layering: what a package imports, directly and through everything it imports.

The sans-I/O core (``gateway.binance``, ``gateway.records``, ``gateway.coordination``) never
reaches an event loop, a socket, Kafka or an adapter, even indirectly; the simulator, the
independent oracle, imports nothing of the gateway's but the shared names of markets and
streams. Each package is imported whole in a fresh interpreter and ``sys.modules`` is read
afterwards, so an import two modules away counts like a direct one.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"
PURE = ("gateway.binance", "gateway.records", "gateway.coordination")
# Reached through anything: the event loop, the network clients, the settings loader (the
# environment and files; it brings asyncio). ``socket`` and ``time`` are imported by the standard
# library itself (``importlib.metadata`` → ``email.utils`` → ``socket``), so they are checked
# only as direct imports below.
IO_MODULES = {
    "asyncio",
    "websockets",
    "aiokafka",
    "aiohttp",
    "ssl",
    "uvloop",
    "pydantic_settings",
}
DIRECT_IO = {"asyncio", "websockets", "aiokafka", "aiohttp", "socket", "time"}
# Beside the pure packages, the core may import only the error tree: no climbing to the shells.
PURE_MAY_REACH = (*PURE, "gateway.errors")
# The oracle's share of the gateway: names both sides must agree on, never parsers or records.
SHARED_NAMES = ("gateway.binance.markets", "gateway.binance.streams")

IMPORT_ALL = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    if not module.name.endswith("__main__"):  # running it would start the program
        importlib.import_module(module.name)
print(json.dumps(sorted(sys.modules)))
"""


def reached(package: str) -> list[str]:
    """Every module in ``sys.modules`` after importing all of ``package`` in a new interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, package],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    modules: list[str] = json.loads(out.splitlines()[-1])
    return modules


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_reach_no_io_even_indirectly(package: str) -> None:
    modules = reached(package)
    assert package in modules  # the import happened at all
    io = [name for name in modules if name.split(".")[0] in IO_MODULES]
    climbed = [
        name for name in modules if name.startswith("gateway.") and not within(name, PURE_MAY_REACH)
    ]
    assert (io, climbed) == ([], [])


@pytest.mark.parametrize("package", [p.removeprefix("gateway.") for p in PURE])
def test_pure_packages_import_no_socket_or_clock_directly(package: str) -> None:
    # The core takes the time as an argument and never opens a socket.
    offenders = []
    for path in (GATEWAY / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in DIRECT_IO]
    assert offenders == []


def test_simulator_imports_only_shared_names_of_the_gateway() -> None:
    # It may share nothing with the gateway's parser or record code, or one bug hides in both.
    modules = reached("gateway.simulator")
    assert "gateway.simulator.exchange" in modules
    borrowed = [
        name
        for name in modules
        if name.startswith("gateway.")
        and not within(name, ("gateway.simulator", *SHARED_NAMES))
        and name != "gateway.binance"  # the package of the shared names, empty
    ]
    assert borrowed == []


# The top of the package: entry points and what every layer may import without climbing.
TOP_LEVEL = {
    "__init__",
    "__main__",
    "cli",  # the entry point
    "errors",
    "logs",
    "metrics",
    "settings",
    "topic_catalogue",
}
# Each layer and what it must never reach: a shell below never depends on what composes it.
NEVER_REACHES = {
    "gateway.adapters": ("gateway.runtime", "gateway.commands", "gateway.accounts"),
    "gateway.runtime": ("gateway.commands",),
    "gateway.accounts": ("gateway.commands",),
    "gateway.consumers": ("gateway.runtime", "gateway.commands", "gateway.accounts"),
}


def test_the_top_of_gateway_holds_only_entry_points_and_cross_cutting_modules() -> None:
    loose = {path.stem for path in GATEWAY.glob("*.py")}
    assert loose == TOP_LEVEL


@pytest.mark.parametrize("package", sorted(NEVER_REACHES))
def test_no_layer_reaches_the_layers_that_compose_it(package: str) -> None:
    modules = reached(package)
    assert package in modules
    # The accounts' configuration model is part of the settings every layer reads.
    allowed = {"gateway.accounts", "gateway.accounts.settings"}
    climbed = [n for n in modules if within(n, NEVER_REACHES[package]) and n not in allowed]
    assert climbed == []


def test_the_readme_layer_table_names_every_package_of_the_tree() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| layer | where |", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`gateway/(\w+)/", table))
    packages = {path.parent.name for path in GATEWAY.glob("*/__init__.py")}
    assert named == packages
    # Every module the table names exists where it says.
    for path in re.findall(r"`(gateway/[\w/]+\.py)`", table):
        assert (ROOT / path).is_file(), path
