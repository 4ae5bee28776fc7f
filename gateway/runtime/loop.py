"""Event-loop plumbing shared by the commands: uvloop, and signals that ask for a clean drain."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T], *, uvloop: bool = True) -> T:
    """Run a coroutine on uvloop when it is installed (it is on Linux) and ``uvloop`` (the
    setting ``runtime.uvloop`` for ``gateway run``), else on asyncio's own loop."""
    try:
        import uvloop as _uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        uvloop = False
    if not uvloop:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=_uvloop.new_event_loop) as runner:
        return runner.run(main)


def install_stop_signals(stop: asyncio.Event, *, hangup: bool = False) -> None:
    """SIGTERM (Kubernetes) and SIGINT (Ctrl-C) ask for a clean drain instead of killing.

    ``hangup``: SIGHUP too, for commands that own child processes (``gateway demo``): a closed
    terminal sends it, and by default it would kill Python at once and orphan the Kafka and
    registry JVMs, which run in sessions of their own.
    """
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT, *((signal.SIGHUP,) if hangup else ()))
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)


GEN0_THRESHOLD = 200_000
"""Allocations between young-generation collections (CPython's default is 700).

The count is allocations less deallocations of tracked objects, so at a steady rate it wanders
near zero and a pass comes from growth: the Kafka buffer filling, or cyclic garbage. Measured
(issue 16, the bench's gateway probe, aggTrade at 50 symbols, full speed, ~7 s per run): at
50,000 a young pass still came every 0.3 s and cost 20-28 ms (its young list is every record
queued since the last one), 0.6-0.8 s of CPU per run; at 200,000 or 1,000,000 none came after
start-up, and CPU per event was 2-6 us lower; CPython's defaults spent ~2 s per run, mostly in
16-21 full passes of ~100 ms."""


def tune_gc() -> None:
    """Once start-up is done: move what exists to the permanent generation, collect less often.

    The hot path allocates many short-lived objects per event and keeps few; with CPython's
    defaults the collector walks the long-lived start-up objects (schemas, settings, modules) over
    and over. ``gc.freeze()`` takes them out of every later collection, and a larger
    generation-0 threshold runs the young collections less often.
    """
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
