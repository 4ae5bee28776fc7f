"""Backfill survives any REST answer (issue 13): a hole is filled, or declared after a bounded time.

Before, a 200 answer whose body was a JSON object, or whose rows were malformed, killed the
backfill task: the symbol's live trades were held back for good, with no gap record.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from gateway.binance.events.trades import Trade
from gateway.errors import RestRequestError
from tests.continuity_support import (
    T0_MS,
    ContinuityHarness,
    RestDouble,
    ScriptedRest,
    agg_trade,
    decoded,
    trade,
)

GOOD = ScriptedRest()


class AnswersInTurn(RestDouble):
    """Answers each request with the next scripted body (the last one repeats); an exception
    instance is raised instead, as the REST client would."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests = 0

    async def answer(
        self, path: str, params: dict[str, str], weight: int, headers: dict[str, str] | None
    ) -> Any:
        self.requests += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        if answer is GOOD:
            return await GOOD.get(path, params, weight=weight)
        return answer


def rows(*ids: int, bad: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
    return [
        {"id": i, "price": "1.5" if i not in bad else "one", "qty": "2", "time": T0_MS + i,
         "isBuyerMaker": False}
        for i in ids
    ]  # fmt: skip


class Harness(ContinuityHarness[RestDouble]):
    """BTCUSDT's trades resumed after Kafka's id 100, on scripted answers."""

    def __init__(
        self, rest: RestDouble, *, give_up_s: float = 0.3, report_held_s: float = 30.0
    ) -> None:
        super().__init__(rest, give_up_s=give_up_s, report_held_s=report_held_s)
        self.continuity.resume({("BTCUSDT", Trade.KIND): 100})

    async def live(self, *ids: int) -> None:
        await self.receive(*map(trade, ids))

    async def settle(self, timeout_s: float = 10.0, *, return_exceptions: bool = True) -> None:
        await super().settle(timeout_s, return_exceptions=return_exceptions)

    def published(self) -> list[tuple[str, Any]]:
        """("trade", id), ("gap", (first, last)) or ("dead_letter", stage) in the order they
        reached the sink."""
        out = []
        for record in self.sink.records:
            value = decoded(record.value)
            if record.topic == "p.trade_gap":
                out.append(("gap", (value["first_missing_id"], value["last_missing_id"])))
            elif record.topic == "p.dead_letter":
                out.append(("dead_letter", value["stage"]))
            else:
                out.append(("trade", value["trade_id"]))
        return out


async def test_an_object_instead_of_rows_is_retried_then_declared_and_the_symbol_released() -> None:
    h = Harness(AnswersInTurn({"code": -1121, "msg": "Invalid symbol."}))
    await h.live(104, 105)
    await h.settle()
    await h.live(106)
    assert h.published() == [("gap", (101, 103)), ("trade", 104), ("trade", 105), ("trade", 106)]
    assert h.continuity.held_back() == {}


async def test_a_wrong_shape_then_a_good_answer_backfills() -> None:
    rest = AnswersInTurn({"oops": 1}, "<html>busy</html>", RestRequestError("HTTP 502"), GOOD)
    h = Harness(rest, give_up_s=30.0)
    await h.live(103)
    await h.settle()
    assert h.published() == [("trade", 101), ("trade", 102), ("trade", 103)]
    assert rest.requests == 4


async def test_malformed_rows_are_left_out_and_only_their_ids_declared() -> None:
    h = Harness(AnswersInTurn(rows(101, 102, 103, bad=frozenset({102})), [1, None, "x"]))
    await h.live(104)
    await h.settle()
    # Each answer with unusable rows is kept once in the dead-letter topic, with every reason.
    assert h.published() == [
        ("dead_letter", "rest"), ("trade", 101), ("dead_letter", "rest"),
        ("gap", (102, 102)), ("trade", 103), ("trade", 104),
    ]  # fmt: skip
    first, _ = (r for r in h.sink.records if r.topic == "p.dead_letter")
    kept = decoded(first.value)
    assert b'"id":102' in kept["raw"] and "row 1" in kept["error"]


async def test_rows_with_ids_nobody_asked_for_are_ignored_and_the_hole_declared() -> None:
    h = Harness(AnswersInTurn(rows(5, 6, 7, 9_999)))
    await h.live(104)
    await h.settle()
    assert h.published() == [("gap", (101, 103)), ("trade", 104)]


async def test_a_symbol_held_back_too_long_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = asyncio.Event()

    class Stalled(RestDouble):
        async def answer(self, *args: Any) -> Any:
            await gate.wait()
            return rows(101)

    h = Harness(Stalled(), give_up_s=60.0, report_held_s=0.05)
    with caplog.at_level(logging.ERROR, logger="gateway.runtime.sequence"):
        await h.live(103)
        assert h.continuity.held_back() == {}
        await asyncio.sleep(0.1)
        await h.live(104)
        await h.live(105)
        assert list(h.continuity.held_back()) == ["BTCUSDT trade"]
    held = [r for r in caplog.records if "held back" in r.getMessage()]
    assert len(held) == 1
    gate.set()
    await h.settle()
    assert h.continuity.held_back() == {}
    assert h.published()[-1] == ("trade", 105)


async def test_the_issues_case_an_agg_trades_object_answer_no_longer_holds_the_symbol_for_good() -> (
    None
):
    from gateway.binance.events.trades import AggTrade

    h = ContinuityHarness(AnswersInTurn({"code": -1003, "msg": "busy"}), give_up_s=0.3)
    h.continuity.resume({("BTCUSDT", AggTrade.KIND): 10})
    await h.receive(*map(agg_trade, range(14, 111)))  # 97 live aggregate trades behind a hole of 3
    await h.settle()
    topics = [r.topic for r in h.sink.records]
    assert topics.count("p.spot.agg_trade") == 97  # before: 94 of 97 never published
    assert topics[0] == "p.trade_gap"


async def test_a_backfilled_row_the_schema_refuses_is_dead_lettered_and_its_id_declared() -> None:
    huge = rows(101, 102, 103)
    huge[1]["price"] = "9" * 40  # parses as a decimal, but no schema's precision holds it
    h = Harness(AnswersInTurn(huge, []), give_up_s=30.0)
    await h.live(104)
    await h.settle()
    assert h.published() == [
        ("dead_letter", "encode"), ("trade", 101), ("gap", (102, 102)), ("trade", 103),
        ("trade", 104),
    ]  # fmt: skip
