"""Shard hand-over through the control topic of a real Kafka: never two streamers at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.adapters.kafka_group import ControlLog, ensure_control_topic
from gateway.runtime.ownership import Ownership
from gateway.settings import KafkaSettings

pytestmark = pytest.mark.kafka

LAYOUT = ("spot-000", "spot-001")


class FakeUnit:
    """A shard that records when it streamed."""

    def __init__(self, name: str, journal: list[tuple[str, str, float]]) -> None:
        self.name = name
        self.journal = journal
        self.streaming = True
        self.failing = False

    async def run(self) -> None:
        self.journal.append(("start", self.name, time.monotonic()))
        try:
            await asyncio.Event().wait()
        finally:
            self.journal.append(("stop", self.name, time.monotonic()))

    def health(self) -> dict[str, object]:
        return {"unit": self.name}


def ownership(
    control: ControlLog, journal: list[tuple[str, str, float]], live: frozenset[str]
) -> tuple[Ownership, list[float]]:
    flushes: list[float] = []

    async def open_unit(shard: str) -> FakeUnit:
        return FakeUnit(f"{control.worker}:{shard}", journal)

    async def flush() -> None:
        flushes.append(time.monotonic())

    owner = Ownership(
        lambda: LAYOUT,
        open_unit,
        lambda shard: None,
        flush,
        control=control,
        live_workers=lambda: live,
    )
    return owner, flushes


async def eventually(predicate, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - polling plain state
            await asyncio.sleep(0.02)


async def test_a_moved_shard_starts_only_after_its_owner_stopped_and_flushed(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    topic = f"{topic_prefix}.control"
    partitions = await ensure_control_topic(kafka, topic, len(LAYOUT))
    a, b = ControlLog(kafka, topic, "a"), ControlLog(kafka, topic, "b")
    await a.start(partitions)
    await b.start(partitions)
    journal: list[tuple[str, str, float]] = []
    live = frozenset({"a", "b"})
    owner_a, flushes_a = ownership(a, journal, live)
    owner_b, _ = ownership(b, journal, live)
    tasks = [asyncio.create_task(owner_a.run()), asyncio.create_task(owner_b.run())]
    try:
        owner_a.want(["spot-000"])
        await eventually(lambda: "spot-000" in owner_a.units)
        owner_b.want(["spot-000"])  # the group moved it; a has not let go yet
        await asyncio.sleep(1.0)
        assert "spot-000" not in owner_b.units
        assert b.claimants(0) == ["a", "b"]
        owner_a.want([])
        await eventually(lambda: "spot-000" in owner_b.units)
        stopped_a = next(t for event, who, t in journal if (event, who) == ("stop", "a:spot-000"))
        started_b = next(t for event, who, t in journal if (event, who) == ("start", "b:spot-000"))
        assert stopped_a <= flushes_a[-1] <= started_b
        assert b.holder(0) == "b"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await a.stop()
        await b.stop()


async def test_a_crashed_owners_claim_is_retired_by_the_next_owner(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    topic = f"{topic_prefix}.control"
    partitions = await ensure_control_topic(kafka, topic, len(LAYOUT))
    crashed = ControlLog(kafka, topic, "crashed")
    await crashed.start(partitions)
    await crashed.claim(1, "spot-001")  # and then it dies without a word
    await crashed.stop()

    survivor = ControlLog(kafka, topic, "survivor")
    await survivor.start(partitions)
    journal: list[tuple[str, str, float]] = []
    owner, _ = ownership(survivor, journal, frozenset({"survivor"}))
    task = asyncio.create_task(owner.run())
    try:
        owner.want(["spot-001"])
        await eventually(lambda: "spot-001" in owner.units, timeout_s=10)
        assert survivor.claimants(1) == ["survivor"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await survivor.stop()
