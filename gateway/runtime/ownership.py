"""Which shards this worker streams, and the hand-over rules when that changes.

The group protocol (or, with coordination off, the configuration alone) says which shards this
worker *should* stream; :class:`Ownership` makes it so, one shard at a time:

* **taking a shard**: retire the claims of workers no longer in the group (they crashed), queue
  this worker's claim on the shard's control partition, wait until it is the oldest standing
  claim (the previous owner has stopped and flushed), resume from what Kafka holds, then stream.
  Shards taken in one go do all of it concurrently and open together (waiting at most
  ``open_together_s`` for a slow hand-over), so their resume is one read of Kafka for all;
* **giving a shard up**: stop its connections, wait until Kafka acknowledged everything read,
  forget its per-symbol state, then withdraw the claim, which lets the next owner start.

So a shard moving between live workers is never streamed twice and loses nothing; a shard of a
crashed worker is taken over once the group notices (the session timeout), and the hole is
backfilled from REST by the trade continuity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Protocol

logger = logging.getLogger(__name__)


class ClaimLog(Protocol):
    """The claims on every shard and this worker's own (``ControlLog`` in production, over the
    control topic; an in-memory log in tests)."""

    @property
    def worker(self) -> str: ...

    def claimants(self, partition: int) -> list[str]: ...

    async def caught_up(self, partitions: Iterable[int]) -> None: ...

    async def claim(self, partition: int, shard: str) -> int: ...

    async def release(self, partition: int, shard: str, worker: str | None = None) -> None: ...

    async def wait_until_holder(
        self, partition: int, after_offset: int, on_wait: Callable[[list[str]], None]
    ) -> None: ...


class Unit(Protocol):
    """A running shard: a market shard's connections, or an account's stream."""

    async def run(self) -> None: ...

    def health(self) -> dict[str, object]: ...

    @property
    def streaming(self) -> bool: ...

    @property
    def failing(self) -> bool: ...


OpenUnit = Callable[[str], Awaitable[Unit]]
"""Prepare a shard this worker now holds (resume its state) and return it, not yet running."""
CloseUnit = Callable[[str], None]
"""Forget a shard's per-symbol state after it stopped."""


class _Round:
    """Shards taken in one go: each opens once all are held, or after ``wait_s`` at the most.

    Opening together lets their resume reads coincide (``LastIdReader`` serves calls made
    together with one scan); the bound keeps a shard whose previous owner is slow to let go from
    holding the others back.
    """

    def __init__(self, size: int) -> None:
        self._left = size
        self._all_held = asyncio.Event()

    def arrived(self) -> None:
        """One shard is held (or gave up trying: it is not waited for)."""
        self._left -= 1
        if self._left <= 0:
            self._all_held.set()

    async def together(self, wait_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self._all_held.wait()


class Ownership:
    """Starts and stops this worker's shards as the wanted set changes."""

    def __init__(
        self,
        layout: Callable[[], tuple[str, ...]],
        open_unit: OpenUnit,
        close_unit: CloseUnit,
        flush: Callable[[], Awaitable[None]],
        *,
        control: ClaimLog | None = None,
        live_workers: Callable[[], frozenset[str]] = frozenset,
        warn_after_s: float = 30.0,
        open_together_s: float = 2.0,
    ) -> None:
        self._layout = layout
        self._open = open_unit
        self._close = close_unit
        self._flush = flush
        self._control = control
        self._live_workers = live_workers
        self._warn_after_s = warn_after_s
        self._open_together_s = open_together_s
        self._wanted: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.units: dict[str, Unit] = {}
        """The shards streaming now (claimed and held)."""
        self.settled = asyncio.Event()
        """Set once every wanted shard is held and streaming has started, cleared on change."""
        self.inherited: set[str] = set()
        """Shards being taken from a worker that left the group holding them (crashed, or
        paused past its session): it declared none of their lost windows."""

    def inherits(self, shard: str) -> bool:
        """Whether ``shard``, now opening, was taken from such a worker (asked once)."""
        if shard in self.inherited:
            self.inherited.discard(shard)
            return True
        return False

    def want(self, shard_ids: Collection[str]) -> None:
        """The shards this worker should stream from now on."""
        self._wanted = set(shard_ids)
        self.settled.clear()
        self._wake.set()

    def owned(self) -> frozenset[str]:
        """Shards this worker holds or is taking: what it tells the group it has."""
        return frozenset(self._tasks)

    def health(self) -> dict[str, object]:
        return {
            shard: self.units[shard].health() if shard in self.units else {"state": "waiting"}
            for shard in sorted(self._tasks)
        }

    @property
    def streaming(self) -> bool:
        return self.settled.is_set() and all(u.streaming for u in self.units.values())

    @property
    def failing(self) -> int:
        return sum(1 for u in self.units.values() if u.failing)

    async def run(self) -> None:
        """Follow the wanted set until cancelled; raises what a shard cannot survive."""
        while True:
            self._wake.clear()
            await self._reconcile()
            waker = asyncio.create_task(self._wake.wait())
            try:
                await asyncio.wait(
                    [waker, *self._tasks.values()], return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waker.cancel()
            for shard, task in list(self._tasks.items()):
                if task.done():
                    del self._tasks[shard]
                    self.units.pop(shard, None)
                    task.result()  # a shard only ends by failing: end the worker with it

    async def release_all(self) -> None:
        """The drain: stop every shard, flush once, then let go of every claim."""
        self._wanted = set()
        await self._give_up(list(self._tasks))

    async def _reconcile(self) -> None:
        await self._give_up([s for s in self._tasks if s not in self._wanted])
        new = sorted(self._wanted - self._tasks.keys())
        taken = _Round(len(new))
        for shard in new:
            self._tasks[shard] = asyncio.create_task(self._own(shard, taken), name=f"shard-{shard}")
        if not self._wanted - self.units.keys():
            self.settled.set()

    async def _own(self, shard: str, taken: _Round) -> None:
        try:
            if self._control is not None:
                await self._take_over(self._control, shard)
        finally:
            taken.arrived()
        await taken.together(self._open_together_s)
        unit = await self._open(shard)
        self.units[shard] = unit
        logger.info("streaming shard %s", shard, extra={"event_data": {"shard": shard}})
        if not self._wanted - self.units.keys():
            self.settled.set()
        await unit.run()

    async def _take_over(self, control: ClaimLog, shard: str) -> None:
        partition = self._layout().index(shard)
        await control.caught_up([partition])
        live = self._live_workers()
        for worker in control.claimants(partition):
            if worker != control.worker and worker not in live:
                logger.warning(
                    "shard %s: retiring the claim of %s, gone from the group", shard, worker
                )
                await control.release(partition, shard, worker)
                self.inherited.add(shard)  # it released nothing: its windows are ours to declare
        offset = await control.claim(partition, shard)
        started = time.monotonic()
        warned_at = started

        def waiting(ahead: list[str]) -> None:
            nonlocal warned_at
            now = time.monotonic()
            if now - warned_at >= self._warn_after_s:
                warned_at = now
                logger.warning(
                    "shard %s: still waiting %.0fs for %s to let go",
                    shard,
                    now - started,
                    ", ".join(w for w in ahead if w != control.worker),
                )

        await control.wait_until_holder(partition, offset, waiting)

    async def _give_up(self, shards: list[str]) -> None:
        if not shards:
            return
        tasks = [self._tasks.pop(shard) for shard in shards]
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for shard, outcome in zip(shards, outcomes, strict=True):
            self.units.pop(shard, None)
            if isinstance(outcome, Exception):
                logger.warning("shard %s had failed before it was given up: %r", shard, outcome)
        await self._flush()  # everything read from these shards is in Kafka before letting go
        for shard in shards:
            self._close(shard)
            if self._control is not None:
                await self._control.release(self._layout().index(shard), shard)
            logger.info("released shard %s", shard, extra={"event_data": {"shard": shard}})
