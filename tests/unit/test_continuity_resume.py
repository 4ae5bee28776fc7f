"""A symbol taken over from another worker continues after Kafka's last id: no duplicate, no hole.

TradeContinuity runs against a recording sink and a scripted REST double; records are decoded
back to check which ids reached the sink, in which order, and which came from REST.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.binance.events.trades import AggTrade, Trade
from tests.continuity_support import (
    CATALOG as CATALOG,  # re-exported: tests/unit/test_pipeline_plausibility.py imports it here
    ContinuityHarness,
    RecordingSink as RecordingSink,  # re-exported, as CATALOG
    ScriptedRest as ScriptedRest,  # re-exported, as CATALOG
    agg_trade,
    decoded,
    trade,
)


class Harness(ContinuityHarness[ScriptedRest]):
    def __init__(self, rest: ScriptedRest | None = None) -> None:
        super().__init__(rest or ScriptedRest())

    def ids(self, kind: str = "trade", symbol: str = "BTCUSDT") -> list[tuple[int, bool]]:
        """(id, came from REST) of every record sent for one symbol and kind, in order."""
        field = "trade_id" if kind == "trade" else "agg_trade_id"
        return [
            (decoded(record.value)[field], ("backfilled", b"1") in record.headers)
            for record in self.sink.records
            if record.topic == f"p.spot.{kind}" and record.key == symbol.encode()
        ]

    @property
    def duplicates(self) -> float:
        return float(self.metrics.duplicates.labels("spot").get())


async def test_a_resumed_symbol_backfills_from_kafkas_last_id_to_the_first_live_one() -> None:
    h = Harness()
    h.continuity.resume({("BTCUSDT", Trade.KIND): 100, ("BTCUSDT", AggTrade.KIND): 40})
    await h.receive(trade(105))
    await h.receive(agg_trade(41))  # right after Kafka's last: nothing to fetch
    await h.settle()
    assert h.ids("trade") == [(101, True), (102, True), (103, True), (104, True), (105, False)]
    assert h.ids("agg_trade") == [(41, False)]
    [(path, params)] = h.rest.requests
    assert "historicalTrades" in path
    assert params["fromId"] == "101"


async def test_live_ids_kafka_already_holds_are_dropped_and_counted() -> None:
    h = Harness()
    h.continuity.resume({("BTCUSDT", Trade.KIND): 100})
    for trade_id in (99, 100, 101, 100, 102):
        await h.receive(trade(trade_id))
    assert h.ids() == [(101, False), (102, False)]
    assert h.duplicates == 3
    assert h.rest.requests == []


async def test_symbols_not_in_the_answer_start_at_their_first_live_id() -> None:
    h = Harness()
    h.continuity.resume({("BTCUSDT", Trade.KIND): 100})
    await h.receive(trade(7, "ETHUSDT"))
    await h.receive(trade(8, "ETHUSDT"))
    assert h.ids(symbol="ETHUSDT") == [(7, False), (8, False)]


async def test_resume_leaves_a_sequence_this_process_already_keeps(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    await h.receive(trade(50))
    h.continuity.resume({("BTCUSDT", Trade.KIND): 45})  # Kafka behind: records in flight
    await h.receive(trade(51))
    assert h.ids() == [(50, False), (51, False)]
    assert "another worker" not in caplog.text
    h.continuity.resume({("BTCUSDT", Trade.KIND): 60})  # Kafka ahead: someone else wrote
    assert "another worker wrote it" in caplog.text
    await h.receive(trade(52))
    assert h.ids()[-1] == (52, False)


async def test_forget_then_resume_seeds_again_from_kafka() -> None:
    h = Harness()
    await h.receive(trade(1))
    await h.receive(trade(2))
    h.continuity.forget(["BTCUSDT"])
    h.continuity.resume({("BTCUSDT", Trade.KIND): 10})  # another worker went on meanwhile
    await h.receive(trade(12))
    await h.settle()
    assert h.ids() == [(1, False), (2, False), (11, True), (12, False)]


async def test_forget_cancels_the_symbols_fetches_and_keeps_the_others() -> None:
    gate = asyncio.Event()
    rest = ScriptedRest()
    rest.gate = gate
    h = Harness(rest)
    h.continuity.resume({("BTCUSDT", Trade.KIND): 10, ("ETHUSDT", Trade.KIND): 20})
    await h.receive(trade(15))
    await h.receive(trade(25, "ETHUSDT"))
    btc, eth = (h.continuity._fetches[(s, Trade.KIND)] for s in ("BTCUSDT", "ETHUSDT"))
    h.continuity.forget({"BTCUSDT"})
    gate.set()
    await h.settle()
    await asyncio.sleep(0)
    assert btc.cancelled()
    assert eth.done() and not eth.cancelled()
    assert h.ids() == []  # nothing of the moved symbol, not even its held live trade
    assert [i for i, _ in h.ids(symbol="ETHUSDT")] == [21, 22, 23, 24, 25]
    await h.receive(trade(16))  # a stray frame after forget: starts afresh, as a new symbol
    assert h.ids() == [(16, False)]


async def test_forget_of_an_unknown_symbol_is_harmless() -> None:
    h = Harness()
    h.continuity.forget(["NOPE"])
    await h.receive(trade(3))
    assert h.ids() == [(3, False)]


def test_resume_refuses_a_kind_without_ids() -> None:
    h = Harness()
    with pytest.raises(ValueError, match="book_ticker"):
        h.continuity.resume({("BTCUSDT", "book_ticker"): 1})


async def test_a_delisted_symbols_last_trades_are_caught_up_before_it_is_forgotten() -> None:
    # Trades 101..104 happened after Kafka's last id, then the symbol stopped trading: no live
    # trade will ever reveal them, so catch_up fetches them once.
    h = Harness(ScriptedRest(last_id=104))
    h.continuity.resume({("BTCUSDT", Trade.KIND): 100, ("ETHUSDT", Trade.KIND): 7})
    await h.continuity.catch_up(["BTCUSDT"])
    assert h.ids("trade") == [(101, True), (102, True), (103, True), (104, True)]
    assert h.ids("trade", "ETHUSDT") == []  # not asked for
    assert [params["fromId"] for _, params in h.rest.requests] == ["101"]
    await h.continuity.catch_up(["BTCUSDT"])  # nothing newer: nothing twice
    assert len(h.ids("trade")) == 4


async def test_a_probe_asks_only_for_the_quiet_kinds_whose_hole_is_not_fetched_already() -> None:
    h = Harness(ScriptedRest(last_id=103))
    h.continuity.resume({("BTCUSDT", Trade.KIND): 100, ("BTCUSDT", AggTrade.KIND): 50})
    await h.continuity.probe([("BTCUSDT", Trade.KIND), ("ETHUSDT", Trade.KIND)])
    assert h.ids("trade") == [(101, True), (102, True), (103, True)]
    # aggTrade was not quiet (not asked for) and ETHUSDT has no id to continue from.
    assert [(path, params["fromId"]) for path, params in h.rest.requests] == [
        ("/api/v3/historicalTrades", "101")
    ]
    h.rest.gate = asyncio.Event()  # the next fetch hangs: a hole is being filled
    await h.receive(trade(106))
    await asyncio.sleep(0)
    asked = len(h.rest.requests)
    await h.continuity.probe([("BTCUSDT", Trade.KIND)])
    assert len(h.rest.requests) == asked  # its fetch reaches the live ids: no probe
    h.rest.gate.set()
    await h.continuity.stop()
