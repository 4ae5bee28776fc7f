"""Shared pieces of the ``TradeContinuity`` tests: REST doubles, a recording sink, a harness.

``TradeContinuity`` runs against a ``RecordingSink`` and a REST double (any ``RestDouble``);
records are decoded back to check which ids reached the sink, in which order, and how.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from gateway.binance.events.base import scaled
from gateway.binance.events.trades import AggTrade, Trade
from gateway.binance.markets import Market
from gateway.metrics import Metrics
from gateway.records.avro import SchemaCatalog, SingleObjectFraming, decode, read_header
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.runtime.sequence import TradeContinuity

CATALOG = SchemaCatalog.load()
T0_MS = 1_700_000_000_000


class RecordingSink:
    def __init__(self) -> None:
        self.records: list[ProducerRecord] = []

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None:
        self.records.append(record)


class RestDouble:
    """``BinanceRestClient.get`` as ``TradeContinuity`` calls it; ``answer`` says what each
    request gets (rows, another JSON value, or a raised error)."""

    async def get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        weight: int,
        headers: dict[str, str] | None = None,
        priority: object = None,  # the RestPriority: a double has no budget
    ) -> Any:
        assert params is not None
        return await self.answer(path, params, weight, headers)

    async def answer(
        self, path: str, params: dict[str, str], weight: int, headers: dict[str, str] | None
    ) -> Any:
        raise NotImplementedError


class ScriptedRest(RestDouble):
    """Serves trades and aggregate trades by id from ``first_id`` on, as Binance's REST does."""

    def __init__(self, first_id: int = 1, last_id: int | None = None) -> None:
        self.first_id = first_id
        self.last_id = last_id  # the exchange's newest id (None: always more)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.gate: asyncio.Event | None = None  # set: answer; None: answer at once

    async def answer(
        self, path: str, params: dict[str, str], weight: int, headers: dict[str, str] | None
    ) -> list[dict[str, Any]]:
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
        price=scaled("1.5", "p"), quantity=scaled("2", "q"), trade_time_us=(T0_MS + trade_id) * 1000,
        buyer_is_maker=False, best_match=None, trade_type=None,
        received_at_us=(T0_MS + trade_id) * 1000,
    )  # fmt: skip


def agg_trade(agg_id: int, symbol: str = "BTCUSDT") -> AggTrade:
    return AggTrade(
        market="spot", symbol=symbol, event_time_us=(T0_MS + agg_id) * 1000, agg_trade_id=agg_id,
        price=scaled("1.5", "p"), quantity=scaled("2", "q"), normal_quantity=None, first_trade_id=agg_id,
        last_trade_id=agg_id, trade_time_us=(T0_MS + agg_id) * 1000, buyer_is_maker=False,
        best_match=None, received_at_us=(T0_MS + agg_id) * 1000,
    )  # fmt: skip


def decoded(value: bytes) -> dict[str, Any]:
    """A record value written with single-object framing, decoded with its writer schema."""
    header = read_header(value)
    assert header.fingerprint is not None
    writer = CATALOG.by_fingerprint(header.fingerprint)
    assert writer is not None
    return decode(value, header, writer)


Rest = TypeVar("Rest", bound=RestDouble)


class ContinuityHarness(Generic[Rest]):
    """One market's ``TradeContinuity`` on ``rest``, publishing under the topic prefix ``p``;
    ``options`` are the continuity's own keyword arguments."""

    def __init__(self, rest: Rest, *, market: Market = Market.SPOT, **options: Any) -> None:
        self.rest = rest
        self.sink = RecordingSink()
        self.metrics = Metrics()
        self.builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")
        self.continuity = TradeContinuity(
            market,
            rest,  # type: ignore[arg-type]  # the REST double has BinanceRestClient.get
            self.builder,
            self.sink,
            self.metrics,
            **options,
        )

    async def receive(self, *events: Trade | AggTrade) -> None:
        """Live events, as the connection's pipeline hands them over."""
        for event in events:
            await self.continuity.receive(event, self.builder.build(event), 0)

    async def settle(self, timeout_s: float = 10.0, *, return_exceptions: bool = False) -> None:
        """Let the backfill tasks run to completion."""
        async with asyncio.timeout(timeout_s):
            while self.continuity._fetches:
                fetches = self.continuity._fetches.values()
                await asyncio.gather(*fetches, return_exceptions=return_exceptions)
