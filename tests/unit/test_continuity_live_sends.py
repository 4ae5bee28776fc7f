"""Live trades reach the sink without queueing on the drain lock, and a drain still waits for
the live trades already on their way (per-symbol order).

The sink here holds chosen records as a full buffer would (``KafkaSink.send`` waits for room).
"""

from __future__ import annotations

import asyncio

from gateway.records.topics import ProducerRecord
from tests.continuity_support import ContinuityHarness, ScriptedRest, decoded, trade


class HoldingSink:
    """Records in order of arrival; a send whose key is in ``hold`` waits until released."""

    def __init__(self) -> None:
        self.records: list[ProducerRecord] = []
        self.hold: set[bytes] = set()
        self.waiting = asyncio.Event()  # a held send is waiting
        self.released = asyncio.Event()

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None:
        if record.key in self.hold:
            self.waiting.set()
            await self.released.wait()
        self.records.append(record)

    def sent(self) -> list[tuple[str, int]]:
        return [(decoded(r.value)["symbol"], decoded(r.value)["trade_id"]) for r in self.records]


def harness(
    rest: ScriptedRest | None = None,
) -> tuple[ContinuityHarness[ScriptedRest], HoldingSink]:
    h = ContinuityHarness(rest or ScriptedRest())
    sink = HoldingSink()
    h.continuity._sink = sink
    return h, sink


async def test_a_live_trade_waiting_for_room_does_not_hold_up_another_symbols() -> None:
    h, sink = harness()
    await h.receive(trade(1, "BTCUSDT"), trade(1, "ETHUSDT"))
    sink.hold.add(b"BTCUSDT")
    btc = asyncio.create_task(h.receive(trade(2, "BTCUSDT")))  # one connection: waits for room
    await asyncio.wait_for(sink.waiting.wait(), 5.0)
    # Another connection's trade goes straight on; behind a lock it would wait for BTCUSDT's.
    await asyncio.wait_for(h.receive(trade(2, "ETHUSDT")), 1.0)
    assert sink.sent()[-1] == ("ETHUSDT", 2)
    sink.released.set()
    await btc
    assert sink.sent()[-1] == ("BTCUSDT", 2)


async def test_a_drain_waits_for_the_live_trades_already_on_their_way() -> None:
    h, sink = harness(ScriptedRest(last_id=5))
    await h.receive(trade(1))
    sink.hold.add(b"BTCUSDT")
    live = asyncio.create_task(h.receive(trade(2)))
    await asyncio.wait_for(sink.waiting.wait(), 5.0)
    sink.hold.clear()  # the drain's records would go at once: they must wait for id 2
    drain = asyncio.create_task(h.continuity.catch_up(["BTCUSDT"]))  # REST holds 3..5
    await asyncio.sleep(0.05)
    assert [i for _, i in sink.sent()] == [1]
    sink.released.set()
    await asyncio.gather(live, drain)
    assert [i for _, i in sink.sent()] == [1, 2, 3, 4, 5]
    assert h.continuity._live_sends == 0


async def test_live_trades_arriving_during_a_drain_go_after_it() -> None:
    h, sink = harness(ScriptedRest(last_id=3))
    await h.receive(trade(1))
    rest = h.rest
    rest.gate = asyncio.Event()
    await h.receive(trade(4))  # a hole: 2..3 are fetched, 4 waits behind them
    sink.hold.add(b"BTCUSDT")
    rest.gate.set()
    await asyncio.wait_for(sink.waiting.wait(), 5.0)  # the drain is sending 2, lock held
    sink.hold.clear()
    later = asyncio.create_task(h.receive(trade(5)))
    await asyncio.sleep(0.05)
    sink.released.set()
    await h.settle()
    await later
    assert [i for _, i in sink.sent()] == [1, 2, 3, 4, 5]
