"""Ownership against an in-memory control log: hand-overs without a broker (issue 12 item 7).

``Ownership`` takes its control log through the ``ClaimLog`` protocol; :class:`MemoryControl`
(``tests/unit/shells/fakes.py``) offers the same calls over one shared in-memory log and keeps the
claims with the core's own ``ShardClaims``, so who holds a shard is decided by the same code as in
production. The Kafka-backed run of the same rules is
``tests/integration/test_ownership.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from gateway.runtime.ownership import Ownership, Unit
from tests.unit.shells.fakes import MemoryControl, SharedLog

LAYOUT = ("s0", "s1", "s2")


class FakeUnit:
    def __init__(self, shard: str, fail: BaseException | None = None) -> None:
        self.shard = shard
        self.fail = fail
        self.started = asyncio.Event()
        self.stop = asyncio.Event()
        self.failing = False
        self.fail_when_stopped: BaseException | None = None

    async def run(self) -> None:
        self.started.set()
        if self.fail is not None:
            raise self.fail
        await self.stop.wait()
        if self.fail_when_stopped is not None:
            raise self.fail_when_stopped

    def health(self) -> dict[str, object]:
        return {"state": "streaming", "shard": self.shard}

    @property
    def streaming(self) -> bool:
        return self.started.is_set()


class Worker:
    """One worker's ``Ownership`` with recording collaborators."""

    def __init__(
        self,
        name: str,
        log: SharedLog | None,
        *,
        live: Callable[[], frozenset[str]] | None = None,
        fail: dict[str, BaseException] | None = None,
        open_together_s: float = 2.0,
        warn_after_s: float = 30.0,
    ) -> None:
        self.events: list[tuple[str, str]] = []
        self.units: dict[str, FakeUnit] = {}
        self.fail = fail or {}
        self.control = MemoryControl(log, name) if log is not None else None
        self.ownership = Ownership(
            lambda: LAYOUT,
            self.open,
            self.close,
            self.flush,
            control=self.control,
            live_workers=live or (lambda: frozenset({name})),
            open_together_s=open_together_s,
            warn_after_s=warn_after_s,
        )
        self.task: asyncio.Task[None] | None = None

    async def open(self, shard: str) -> Unit:
        self.events.append(("open", shard))
        unit = self.units[shard] = FakeUnit(shard, self.fail.get(shard))
        return unit

    def close(self, shard: str) -> None:
        self.events.append(("close", shard))

    async def flush(self) -> None:
        self.events.append(("flush", ""))

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.ownership.run())
        return self.task

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def settled(worker: Worker, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        await worker.ownership.settled.wait()


async def test_without_control_the_wanted_shards_stream_and_leave_after_a_flush() -> None:
    w = Worker("w1", None)
    w.start()
    assert not w.ownership.streaming
    w.ownership.want(["s0", "s1"])
    await settled(w)
    assert w.ownership.owned() == {"s0", "s1"}
    assert w.ownership.streaming and w.ownership.failing == 0
    assert w.ownership.health() == {
        "s0": {"state": "streaming", "shard": "s0"},
        "s1": {"state": "streaming", "shard": "s1"},
    }
    w.units["s1"].failing = True
    assert w.ownership.failing == 1

    w.ownership.want(["s0"])
    async with asyncio.timeout(5):
        while w.ownership.owned() != {"s0"}:  # noqa: ASYNC110 - following a reconcile
            await asyncio.sleep(0.01)
    assert w.events[-2:] == [("flush", ""), ("close", "s1")]  # flushed before it is forgotten
    await w.stop()


async def test_a_shard_moves_only_after_its_previous_owner_let_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = SharedLog(len(LAYOUT))
    both = lambda: frozenset({"a", "b"})  # noqa: E731 - both are live: no claim is retired
    a, b = Worker("a", log, live=both), Worker("b", log, live=both, warn_after_s=0.0)
    a.start()
    a.ownership.want(["s1"])
    await settled(a)
    assert log.claims[1].holder == "a"

    b.start()
    b.ownership.want(["s1"])
    await asyncio.sleep(0.2)
    assert ("open", "s1") not in b.events  # queued behind a's claim
    assert b.ownership.health() == {"s1": {"state": "waiting"}}
    assert not b.ownership.settled.is_set()

    a.ownership.want([])
    await settled(b)
    assert a.events == [("open", "s1"), ("flush", ""), ("close", "s1")]
    assert b.events == [("open", "s1")]
    assert log.claims[1].holder == "b"
    # a's release was written before b could hold the shard: never streamed twice.
    assert log.writes == [(1, "s1", "a", True), (1, "s1", "b", True), (1, "s1", "a", False)]
    assert "still waiting" in caplog.text
    await a.stop()
    await b.stop()


async def test_the_claim_of_a_worker_gone_from_the_group_is_retired(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = SharedLog(len(LAYOUT))
    await log.write(2, "s2", "crashed", True)
    w = Worker("w", log)  # the group knows only "w"
    w.start()
    w.ownership.want(["s2"])
    await settled(w)
    assert log.writes[1] == (2, "s2", "crashed", False)
    assert log.claims[2].holder == "w"
    assert w.control is not None and w.control.caught_up_calls == [[2]]
    assert "retiring the claim of crashed" in caplog.text
    await w.stop()


async def test_shards_taken_together_do_not_wait_long_for_a_slow_hand_over() -> None:
    log = SharedLog(len(LAYOUT))
    await log.write(0, "s0", "slow", True)  # a live worker that does not let go
    w = Worker("w", log, live=lambda: frozenset({"w", "slow"}), open_together_s=0.2)
    w.start()
    w.ownership.want(["s0", "s1", "s2"])
    async with asyncio.timeout(5):
        while len(w.units) < 2:  # noqa: ASYNC110 - following the round
            await asyncio.sleep(0.01)
    assert set(w.units) == {"s1", "s2"}
    assert not w.ownership.settled.is_set()
    await log.write(0, "s0", "slow", False)
    await settled(w)
    assert set(w.units) == set(LAYOUT)
    await w.stop()


async def test_a_failing_shard_ends_the_worker() -> None:
    w = Worker("w", None, fail={"s0": RuntimeError("a bug")})
    task = w.start()
    w.ownership.want(["s0"])
    with pytest.raises(RuntimeError, match="a bug"):
        await asyncio.wait_for(task, 5)


async def test_release_all_stops_every_shard_flushes_once_and_withdraws_every_claim(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    log = SharedLog(len(LAYOUT))
    w = Worker("w", log)
    w.start()
    w.ownership.want(["s0", "s1", "s2"])
    await settled(w)
    await w.stop()
    # A shard that failed after the run stopped following it: given up all the same.
    w.units["s2"].fail_when_stopped = RuntimeError("late failure")
    w.units["s2"].stop.set()
    await asyncio.sleep(0.05)
    await w.ownership.release_all()
    assert [e for e in w.events if e[0] != "open"] == [
        ("flush", ""),
        ("close", "s0"),
        ("close", "s1"),
        ("close", "s2"),
    ]
    assert [holder for holder in (log.claims[p].holder for p in range(3))] == [None] * 3
    assert w.ownership.owned() == frozenset()
    assert "had failed before it was given up" in caplog.text
    assert "released shard s0" in caplog.text
