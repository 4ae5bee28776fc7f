"""The repository stands on its own: a clone with nothing beside it runs every command.

The Binance facts the code relies on are in ``docs/binance.md`` and the example payloads the tests use
in ``tests/data/binance``; nothing may reach for a folder outside the checkout.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A path that climbs out of the checkout to a sibling folder, or a fact sheet that is not in the repo.
OUTSIDE = re.compile(r"\.\./shared|parent\s*/\s*[\"']shared[\"']|binance-reference|FACTS\.md")
SCANNED = ["gateway", "tests", "deploy", "bench", "config", ".ci", "Makefile", "pyproject.toml"]


def _files() -> list[Path]:
    found: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += [
                p
                for p in path.rglob("*")
                if p.is_file()
                and "target" not in p.parts
                and "__pycache__" not in p.parts
                and p.suffix not in {".json", ".avsc", ".pyc"}
            ]
    return found


def test_nothing_reaches_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _files()
        if path.resolve() != this
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == [], "read docs/binance.md and tests/data/binance instead"


def test_the_vectors_name_their_sources() -> None:
    readme = (ROOT / "tests" / "data" / "binance" / "README.md").read_text()
    vectors = sorted(
        str(p.relative_to(ROOT / "tests" / "data" / "binance"))
        for p in (ROOT / "tests" / "data" / "binance").rglob("*.json")
    )
    assert vectors, "the example payloads are missing"
    unnamed = [v for v in vectors if f"`{v}`" not in readme]
    assert unnamed == []
