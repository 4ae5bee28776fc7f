"""A symbol taken over from another worker continues after Kafka's last id: no duplicate, no hole.

TradeContinuity runs against a recording sink and a scripted REST double; records are decoded
back to check which ids reached the sink, in which order, and which came from REST.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from gateway.binance.events.trades import AggTrade, Trade
from gateway.binance.markets import Market
from gateway.continuity import TradeContinuity
from gateway.metrics import Metrics
from gateway.records.avro import SchemaCatalog, SingleObjectFraming, decode, read_header
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer

CATALOG = SchemaCatalog.load()
T0_MS = 1_700_000_000_000


class RecordingSink:
    def __init__(self) -> None:
        self.records: list[ProducerRecord] = []

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None:
        self.records.append(record)


class ScriptedRest:
    """Serves trades and aggregate trades by id from ``first_id`` on, as Binance's REST does."""

    def __init__(self, first_id: int = 1, last_id: int | None = None) -> None:
        self.first_id = first_id
        self.last_id = last_id  # the exchange's newest id (None: always more)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.gate: asyncio.Event | None = None  # set: answer; None: answer at once

    async def get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        weight: int,
        headers: dict[str, str] | None = None,
    ) -> list:
        assert params is not None
        self.requests.append((path, params))
        if self.gate is not None:
            await self.gate.wait()
        start = max(int(params["fromId"]), self.first_id)
        end = start + int(params["limit"])
        ids = range(start, end if self.last_id is None else min(end, self.last_id + 1))
        if "aggTrades" in path:
            return [
                {"a": i, "p": "1.5", "q": "2", "f": i, "l": i, "T": T0_MS + i, "m": False}
                for i in ids
            ]
        return [
            {"id": i, "price": "1.5", "qty": "2", "time": T0_MS + i, "isBuyerMaker": False}
            for i in ids
        ]


def trade(trade_id: int, symbol: str = "BTCUSDT") -> Trade:
    return Trade(
        market="spot", symbol=symbol, event_time_us=(T0_MS + trade_id) * 1000, trade_id=trade_id,
        price=Decimal("1.5"), quantity=Decimal("2"), trade_time_us=(T0_MS + trade_id) * 1000,
        buyer_is_maker=False, best_match=None, trade_type=None,
        received_at_us=(T0_MS + trade_id) * 1000,
    )  # fmt: skip


def agg_trade(agg_id: int, symbol: str = "BTCUSDT") -> AggTrade:
    return AggTrade(
        market="spot", symbol=symbol, event_time_us=(T0_MS + agg_id) * 1000, agg_trade_id=agg_id,
        price=Decimal("1.5"), quantity=Decimal("2"), normal_quantity=None, first_trade_id=agg_id,
        last_trade_id=agg_id, trade_time_us=(T0_MS + agg_id) * 1000, buyer_is_maker=False,
        best_match=None, received_at_us=(T0_MS + agg_id) * 1000,
    )  # fmt: skip


class Harness:
    def __init__(self, rest: ScriptedRest | None = None) -> None:
        self.sink = RecordingSink()
        self.rest = rest or ScriptedRest()
        self.metrics = Metrics()
        self.builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")
        self.continuity = TradeContinuity(
            Market.SPOT,
            self.rest,  # type: ignore[arg-type]  # the REST double has BinanceRestClient.get
            self.builder,
            self.sink,
            self.metrics,
        )

    async def live(self, event: Trade | AggTrade) -> None:
        await self.continuity.receive(event, self.builder.build(event), 0)

    async def settle(self) -> None:
        """Let the backfill tasks run to completion."""
        while self.continuity._fetches:
            await asyncio.gather(*self.continuity._fetches.values())

    def ids(self, kind: str = "trade", symbol: str = "BTCUSDT") -> list[tuple[int, bool]]:
        """(id, came from REST) of every record sent for one symbol and kind, in order."""
        field = "trade_id" if kind == "trade" else "agg_trade_id"
        out = []
        for record in self.sink.records:
            if record.topic != f"p.spot.{kind}" or record.key != symbol.encode():
                continue
            header = read_header(record.value)
            value = decode(record.value, header, CATALOG.by_fingerprint(header.fingerprint))
            out.append((value[field], ("backfilled", b"1") in record.headers))
        return out

    @property
    def duplicates(self) -> float:
        return self.metrics.duplicates.labels("spot").get()


async def test_a_resumed_symbol_backfills_from_kafkas_last_id_to_the_first_live_one():
    h = Harness()
    h.continuity.resume({("BTCUSDT", Trade.KIND): 100, ("BTCUSDT", AggTrade.KIND): 40})
    await h.live(trade(105))
    await h.live(agg_trade(41))  # right after Kafka's last: nothing to fetch
    await h.settle()
    assert h.ids("trade") == [(101, True), (102, True), (103, True), (104, True), (105, False)]
    assert h.ids("agg_trade") == [(41, False)]
    [(path, params)] = h.rest.requests
    assert "historicalTrades" in path
    assert params["fromId"] == "101"


async def test_live_ids_kafka_already_holds_are_dropped_and_counted():
    h = Harness()
    h.continuity.resume({("BTCUSDT", Trade.KIND): 100})
    for trade_id in (99, 100, 101, 100, 102):
        await h.live(trade(trade_id))
    assert h.ids() == [(101, False), (102, False)]
    assert h.duplicates == 3
    assert h.rest.requests == []


async def test_symbols_not_in_the_answer_start_at_their_first_live_id():
    h = Harness()
    h.continuity.resume({("BTCUSDT", Trade.KIND): 100})
    await h.live(trade(7, "ETHUSDT"))
    await h.live(trade(8, "ETHUSDT"))
    assert h.ids(symbol="ETHUSDT") == [(7, False), (8, False)]


async def test_resume_leaves_a_sequence_this_process_already_keeps(caplog):
    h = Harness()
    await h.live(trade(50))
    h.continuity.resume({("BTCUSDT", Trade.KIND): 45})  # Kafka behind: records in flight
    await h.live(trade(51))
    assert h.ids() == [(50, False), (51, False)]
    assert "another worker" not in caplog.text
    h.continuity.resume({("BTCUSDT", Trade.KIND): 60})  # Kafka ahead: someone else wrote
    assert "another worker wrote it" in caplog.text
    await h.live(trade(52))
    assert h.ids()[-1] == (52, False)


async def test_forget_then_resume_seeds_again_from_kafka():
    h = Harness()
    await h.live(trade(1))
    await h.live(trade(2))
    h.continuity.forget(["BTCUSDT"])
    h.continuity.resume({("BTCUSDT", Trade.KIND): 10})  # another worker went on meanwhile
    await h.live(trade(12))
    await h.settle()
    assert h.ids() == [(1, False), (2, False), (11, True), (12, False)]


async def test_forget_cancels_the_symbols_fetches_and_keeps_the_others():
    gate = asyncio.Event()
    rest = ScriptedRest()
    rest.gate = gate
    h = Harness(rest)
    h.continuity.resume({("BTCUSDT", Trade.KIND): 10, ("ETHUSDT", Trade.KIND): 20})
    await h.live(trade(15))
    await h.live(trade(25, "ETHUSDT"))
    btc, eth = (h.continuity._fetches[(s, Trade.KIND)] for s in ("BTCUSDT", "ETHUSDT"))
    h.continuity.forget({"BTCUSDT"})
    gate.set()
    await h.settle()
    await asyncio.sleep(0)
    assert btc.cancelled()
    assert eth.done() and not eth.cancelled()
    assert h.ids() == []  # nothing of the moved symbol, not even its held live trade
    assert [i for i, _ in h.ids(symbol="ETHUSDT")] == [21, 22, 23, 24, 25]
    await h.live(trade(16))  # a stray frame after forget: starts afresh, as a new symbol
    assert h.ids() == [(16, False)]


async def test_forget_of_an_unknown_symbol_is_harmless():
    h = Harness()
    h.continuity.forget(["NOPE"])
    await h.live(trade(3))
    assert h.ids() == [(3, False)]


def test_resume_refuses_a_kind_without_ids():
    h = Harness()
    with pytest.raises(ValueError, match="book_ticker"):
        h.continuity.resume({("BTCUSDT", "book_ticker"): 1})


async def test_a_delisted_symbols_last_trades_are_caught_up_before_it_is_forgotten():
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
