"""Shared fixtures and helpers for the simulator's socket-level tests (no tests of its own)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection

from tests.integration.conftest import SimulatorFactory, started_simulators

TIMEOUT_S = 5.0
FAST = {
    "start_paused": True,
    "trades_per_second_per_symbol": None,
    "ping_interval_s": None,
    "close_timeout_s": 0.5,
    "update_interval_scale": 0.05,
}

Start = SimulatorFactory


@pytest.fixture
async def simulator() -> AsyncIterator[Start]:
    """Start simulators (``FAST`` plus overrides); all are stopped after the test."""
    async with started_simulators(FAST) as start:
        yield start


async def receive(ws: ClientConnection, count: int, timeout_s: float = TIMEOUT_S) -> list[Any]:
    """Exactly ``count`` frames, decoded."""
    async with asyncio.timeout(timeout_s):
        return [orjson.loads(await ws.recv()) for _ in range(count)]


async def receive_until(ws: ClientConnection, predicate: Callable[[Any], bool]) -> Any:
    """The first decoded frame for which ``predicate`` holds."""
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            frame = orjson.loads(await ws.recv())
            if predicate(frame):
                return frame


async def silent_for(ws: ClientConnection, seconds: float) -> bool:
    """Whether nothing arrives for ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            await ws.recv()
    except TimeoutError:
        return True
    return False


async def request(ws: ClientConnection, message: dict[str, Any]) -> Any:
    """Send a control message; return the first reply (a frame with ``id`` or ``code``)."""
    await ws.send(orjson.dumps(message).decode())
    return await receive_until(ws, lambda f: isinstance(f, dict) and ("id" in f or "code" in f))
