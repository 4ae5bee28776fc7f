"""Futures trade holes: by id with an API key (historicalTrades), else from the latest trades, and
what neither can give is declared on trade_gap (docs/binance-streams.md, "Trades over REST")."""

from __future__ import annotations

from gateway.binance.events.base import scaled
from gateway.binance.events.trades import Trade
from gateway.binance.markets import Market
from gateway.errors import RestRequestError
from gateway.runtime.sequence import API_KEY_HEADER
from tests.continuity_support import T0_MS, ContinuityHarness, RecordingSink, RestDouble, decoded

NEWEST = 1_000  # the exchange's last trade id


class FuturesRest(RestDouble):
    """USDⓈ-M trade endpoints as Binance documents them: historicalTrades by id wants a key,
    trades gives the latest rows; both rows carry no ``X`` (order-book trades only)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], int, dict[str, str] | None]] = []

    async def answer(
        self, path: str, params: dict[str, str], weight: int, headers: dict[str, str] | None
    ) -> list[dict[str, object]]:
        self.calls.append((path, params, weight, headers))
        limit = int(params["limit"])
        if path == "/fapi/v1/historicalTrades":
            if not headers or not headers.get(API_KEY_HEADER):
                raise RestRequestError("HTTP 401: API-key format invalid", status=401)
            first = int(params["fromId"])
            ids = range(first, min(first + limit, NEWEST + 1))
        else:
            assert path == "/fapi/v1/trades"
            ids = range(NEWEST - limit + 1, NEWEST + 1)
        return [
            {
                "id": i,
                "price": "1.5",
                "qty": "2",
                "quoteQty": "3",
                "time": T0_MS + i,
                "isBuyerMaker": False,
                "isRPITrade": False,
            }
            for i in ids
        ]


def live(trade_id: int) -> Trade:
    return Trade(
        market="usdm", symbol="BTCUSDT", event_time_us=(T0_MS + trade_id) * 1000,
        trade_id=trade_id, price=scaled("1.5", "p"), quantity=scaled("2", "q"),
        trade_time_us=(T0_MS + trade_id) * 1000, buyer_is_maker=False, best_match=None,
        trade_type="MARKET", received_at_us=(T0_MS + trade_id) * 1000,
    )  # fmt: skip


async def run(api_key: str | None, first: int, second: int) -> tuple[FuturesRest, RecordingSink]:
    h = ContinuityHarness(FuturesRest(), market=Market.USDM, api_key=api_key)
    await h.receive(live(first), live(second))
    await h.settle()
    return h.rest, h.sink


def published(sink: RecordingSink) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for record in sink.records:
        value = decoded(record.value)
        if record.topic == "p.usdm.trade":
            out.append(("trade", value["trade_id"]))
            assert value["trade_type"] == "MARKET"
        else:
            assert record.topic == "p.trade_gap"
            out.append(("gap", (value["first_missing_id"], value["last_missing_id"])))
    return out


async def test_with_an_api_key_a_hole_is_fetched_by_id() -> None:
    rest, sink = await run("k3y", 1, 10)
    assert published(sink) == [("trade", i) for i in range(1, 11)]
    [(path, params, weight, headers)] = rest.calls
    assert (path, params["fromId"], weight, headers) == (
        "/fapi/v1/historicalTrades", "2", 200, {API_KEY_HEADER: "k3y"},
    )  # fmt: skip


async def test_without_a_key_the_latest_trades_fill_what_they_cover_and_the_rest_is_a_gap() -> None:
    rest, sink = await run(None, 1, 900)
    # /fapi/v1/trades answers ids 501..1000: 501..899 fill the hole, 2..500 are declared lost.
    assert published(sink) == [
        ("trade", 1),
        ("gap", (2, 500)),
        *(("trade", i) for i in range(501, 901)),
    ]
    assert [(path, weight, headers) for path, _, weight, headers in rest.calls] == [
        ("/fapi/v1/trades", 5, None)
    ]


async def test_without_a_key_a_recent_hole_is_filled_completely() -> None:
    _, sink = await run(None, 950, 960)
    assert published(sink) == [("trade", i) for i in range(950, 961)]
