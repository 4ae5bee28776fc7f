"""A book's snapshot fetch survives any REST answer (issue 13): before, a depth answer of the wrong
shape raised KeyError in the fetch task, which died, and the book never synchronised again."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from gateway.binance.book import SyncState
from gateway.binance.events.books import DepthUpdate, PriceLevel
from gateway.binance.markets import Market
from gateway.errors import RestRequestError
from gateway.metrics import Metrics
from gateway.records.avro import SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer
from gateway.runtime.book import BookKeeper
from tests.continuity_support import RecordingSink

GOOD = {"lastUpdateId": 158, "bids": [["1.0", "2"]], "asks": [["1.1", "3"]]}


class AnswersInTurn:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)

    async def get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        weight: int,
        priority: object = None,
    ) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def diff(first: int, last: int) -> DepthUpdate:
    return DepthUpdate(
        market="spot", symbol="BNBBTC", pair=None, event_time_us=1, transaction_time_us=None,
        first_update_id=first, final_update_id=last, previous_final_update_id=None,
        bids=[PriceLevel(Decimal("1.0"), Decimal("5"))], asks=[], received_at_us=1,
    )  # fmt: skip


async def test_wrong_shapes_and_bad_levels_are_retried_until_a_usable_snapshot_syncs_the_book() -> (
    None
):
    answers = AnswersInTurn(
        {"code": -1121, "msg": "Invalid symbol."},
        [GOOD],
        {**GOOD, "bids": [["x", "1"]]},
        {"lastUpdateId": None, "bids": [], "asks": []},
        RestRequestError("HTTP 502"),
        GOOD,
    )
    sink = RecordingSink()
    builder = RecordBuilder(SchemaCatalog.load(), SingleObjectFraming(), TopicNamer("p"), "gw")
    books = BookKeeper(
        Market.SPOT, answers, builder, sink, Metrics(),  # type: ignore[arg-type]
        retry_delays=lambda: iter([0.0] * 10),
    )  # fmt: skip
    await books.receive(diff(157, 160))
    async with asyncio.timeout(30):
        while books._tasks:  # the fetch task, retrying until a snapshot is usable
            await asyncio.gather(*books._tasks)
    book = books.synchronizer("BNBBTC")
    assert book is not None and book.state is SyncState.SYNCED
    assert answers.answers == []
    assert [r.topic for r in sink.records] == ["p.spot.book_snapshot"]
    await books.stop()
