"""Access to Binance's official example payloads, carried in ``tests/data/binance``.

``tests/data/binance/README.md`` names the documentation page (and commit) each one was taken from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

REPO_ROOT = Path(__file__).resolve().parents[1]
VECTORS_DIR = REPO_ROOT / "tests" / "data" / "binance"


def vector_bytes(relative: str) -> bytes:
    """A vector as compact JSON bytes, the way it arrives on a socket."""
    return orjson.dumps(orjson.loads((VECTORS_DIR / relative).read_bytes()))


def vector(relative: str) -> Any:
    return orjson.loads((VECTORS_DIR / relative).read_bytes())
