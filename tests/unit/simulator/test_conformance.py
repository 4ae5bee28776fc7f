"""Every documented example payload in ``tests/data/binance`` has a simulator twin
with the same keys, key order and value types, produced by the code that feeds the sockets."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
import pytest

from gateway.simulator.markets import Market
from gateway.simulator.payloads import (
    agg_trade_builder,
    combined_frame,
    encode,
    futures_rest_agg_trade,
    rest_agg_trade,
    trade_payload,
)
from gateway.simulator.render_market import block_trade_payload, server_shutdown_payload
from gateway.simulator.render_rest import rate_limits, rest_depth, rest_kline
from tests.unit.simulator.conformance import Scenario, assert_conforms
from tests.vectors import VECTORS_DIR, vector

S, U, C = Market.SPOT, Market.USDM, Market.COINM


@cache
def scenario(market: Market) -> Scenario:
    return Scenario(market)


def stream(market: Market, name: str) -> Any:
    return lambda: scenario(market).one(name)


def agg_trade(market: Market) -> Any:
    sc = scenario(market)
    fill = sc.fills[-1]
    return agg_trade_builder(market)(sc.market.specs[fill.agg_trade.symbol], fill.agg_trade, _MS)


def block_trade() -> Any:
    sc = scenario(S)
    for fill in sc.fills:
        if (block := sc.market.block_trade(fill)) is not None:
            return block_trade_payload(sc.market.specs[block.symbol], block)
    raise AssertionError("no block trade in the scenario")


def book_ticker(market: Market) -> Any:
    sc = scenario(market)
    return sc.market.book_ticker(sc.symbols[0], sc.now_us)(_MS)


def depth_snapshot(market: Market) -> Any:
    sc = scenario(market)
    symbol = sc.symbols[0]
    snapshot = sc.market.book(symbol).snapshot(100)
    return rest_depth(market, sc.market.specs[symbol], snapshot, sc.now_us // 1_000)


def klines(market: Market) -> Any:
    sc = scenario(market)
    symbol = sc.symbols[0]
    rows = sc.market.candles[symbol].history("1m", 0, sc.now_us // 1_000)
    assert rows
    return [rest_kline(sc.market.specs[symbol], row) for row in rows]


def rest_agg_trades(market: Market) -> Any:
    sc = scenario(market)
    fill = sc.fills[-1]
    if market is S:
        return [rest_agg_trade(fill.agg_trade)]
    return [futures_rest_agg_trade(sc.market.specs[fill.agg_trade.symbol], fill.agg_trade)]


from gateway.simulator.payloads import TimeUnit  # noqa: E402

_MS = TimeUnit.MILLISECOND


def combined(name: str, payload: Any) -> Any:
    return orjson.loads(combined_frame(name, encode(payload)))


PRODUCERS: dict[str, Any] = {
    # spot
    "spot/trade.json": lambda: trade_payload(scenario(S).fills[-1].trades[0]),
    "spot/aggTrade.json": lambda: agg_trade(S),
    "spot/avgPrice.json": stream(S, "btcusdt@avgPrice"),
    "spot/blockTrade.json": block_trade,
    "spot/bookTicker.json": lambda: book_ticker(S),
    "spot/combined_wrapper_example.json": lambda: combined("btcusdt@aggTrade", agg_trade(S)),
    "spot/depth_diff.json": stream(S, "btcusdt@depth@100ms"),
    "spot/depth_partial.json": stream(S, "btcusdt@depth5"),
    "spot/kline.json": stream(S, "btcusdt@kline_1m"),
    "spot/kline_utc8.json": stream(S, "btcusdt@kline_1d@+08:00"),
    "spot/miniTicker.json": stream(S, "btcusdt@miniTicker"),
    "spot/miniTicker_arr.json": stream(S, "!miniTicker@arr"),
    "spot/referencePrice.json": stream(S, "btcusdt@referencePrice"),
    "spot/ticker.json": stream(S, "btcusdt@ticker"),
    "spot/ticker_1h.json": stream(S, "btcusdt@ticker_1h"),
    "spot/ticker_1h_arr.json": stream(S, "!ticker_1h@arr"),
    "spot/serverShutdown.json": lambda: server_shutdown_payload(scenario(S).now_us),
    "spot/serverShutdown.combined.json": lambda: combined(
        "!serverShutdown", server_shutdown_payload(scenario(S).now_us)
    ),
    "spot/rest_aggTrades.json": lambda: rest_agg_trades(S),
    "spot/rest_depth.json": lambda: depth_snapshot(S),
    "spot/rest_klines.json": lambda: klines(S),
    "spot/rest_rateLimits.json": lambda: rate_limits(S),
    # usdm
    "usdm/aggTrade.json": lambda: agg_trade(U),
    "usdm/assetIndex_arr.json": stream(U, "!assetIndex@arr"),
    "usdm/bookTicker.json": lambda: book_ticker(U),
    "usdm/bookTicker_all.json": stream(U, "!bookTicker"),
    "usdm/compositeIndex.json": stream(U, "btcusdt@compositeIndex"),
    "usdm/continuousKline.json": stream(U, "btcusdt_perpetual@continuousKline_1m"),
    "usdm/contractInfo.json": stream(U, "!contractInfo"),
    "usdm/depth_diff.json": stream(U, "btcusdt@depth@100ms"),
    "usdm/depth_partial.json": stream(U, "btcusdt@depth5@500ms"),
    "usdm/forceOrder.json": stream(U, "btcusdt@forceOrder"),
    "usdm/forceOrder_arr.json": stream(U, "!forceOrder@arr"),
    "usdm/kline.json": stream(U, "btcusdt@kline_1m"),
    "usdm/markPrice.json": stream(U, "btcusdt@markPrice@1s"),
    "usdm/markPrice_arr.json": stream(U, "!markPrice@arr"),
    "usdm/miniTicker.json": stream(U, "btcusdt@miniTicker"),
    "usdm/miniTicker_arr.json": stream(U, "!miniTicker@arr"),
    "usdm/rpiDepth.json": stream(U, "btcusdt@rpiDepth@500ms"),
    "usdm/ticker.json": stream(U, "btcusdt@ticker"),
    "usdm/ticker_arr.json": stream(U, "!ticker@arr"),
    "usdm/tradingSession.json": stream(U, "tradingSession"),
    "usdm/rest_aggTrades.json": lambda: rest_agg_trades(U),
    "usdm/rest_depth.json": lambda: depth_snapshot(U),
    "usdm/rest_klines.json": lambda: klines(U),
    # coinm
    "coinm/aggTrade.json": lambda: agg_trade(C),
    "coinm/bookTicker.json": lambda: book_ticker(C),
    "coinm/bookTicker_all.json": lambda: book_ticker(C),
    "coinm/continuousKline.json": stream(C, "btcusd_perpetual@continuousKline_1m"),
    "coinm/contractInfo.json": stream(C, "!contractInfo"),
    "coinm/depth_diff.json": stream(C, "btcusd_perp@depth"),
    "coinm/depth_partial.json": stream(C, "btcusd_perp@depth10"),
    "coinm/forceOrder.json": stream(C, "btcusd_perp@forceOrder"),
    "coinm/forceOrder_arr.json": stream(C, "!forceOrder@arr"),
    "coinm/indexPrice.json": stream(C, "btcusd@indexPrice@1s"),
    "coinm/indexPriceKline.json": stream(C, "btcusd@indexPriceKline_1m"),
    "coinm/kline.json": stream(C, "btcusd_perp@kline_1m"),
    "coinm/markPrice.json": stream(C, "btcusd_perp@markPrice"),
    "coinm/markPriceKline.json": stream(C, "btcusd_perp@markPriceKline_1m"),
    "coinm/markPrice_pair_arr.json": stream(C, "btcusd@markPrice"),
    "coinm/miniTicker.json": stream(C, "btcusd_perp@miniTicker"),
    "coinm/miniTicker_arr.json": stream(C, "!miniTicker@arr"),
    "coinm/ticker.json": stream(C, "btcusd_perp@ticker"),
    "coinm/ticker_arr.json": stream(C, "!ticker@arr"),
}

RETIRED_STREAMS = {
    # Binance removed these; the simulator refuses them like any unknown stream.
    "spot/bookTicker_all_RETIRED.json": (S, "!bookTicker"),
    "spot/ticker_arr_RETIRED.json": (S, "!ticker@arr"),
}


@pytest.mark.parametrize("relative", sorted(RETIRED_STREAMS))
def test_retired_streams_are_not_served(relative: str) -> None:
    market, name = RETIRED_STREAMS[relative]
    assert not scenario(market).catalog.is_known(name)
    assert vector(relative)  # the example still exists, for replaying old captures


def test_microsecond_connections_get_every_time_field_in_microseconds() -> None:
    sc = scenario(S)
    for name in ("btcusdt@kline_1m", "btcusdt@ticker", "btcusdt@avgPrice"):
        key = sc.catalog.key(name)
        assert key is not None
        (make,) = sc.market.render(name, key, sc.now_us)[-1:]
        millis, micros = make(TimeUnit.MILLISECOND), make(TimeUnit.MICROSECOND)
        assert isinstance(millis, dict) and isinstance(micros, dict)
        assert micros["E"] == sc.now_us and millis["E"] == sc.now_us // 1_000


def all_vector_files() -> list[str]:
    return sorted(str(path.relative_to(VECTORS_DIR)) for path in VECTORS_DIR.rglob("*.json"))


# --- user data, control messages, REST bodies -------------------------------------------------

from gateway.simulator import control  # noqa: E402
from gateway.simulator.payloads_user import (  # noqa: E402
    UserOrder,
    account_config_update,
    account_update,
    balance_update,
    event_stream_terminated,
    execution_report,
    list_status,
    listen_key_expired,
    margin_call,
    order_trade_update,
    outbound_account_position,
    trade_lite,
    wsapi_event,
)
from gateway.simulator.render_rest import futures_exchange_info  # noqa: E402
from gateway.simulator.userdata import ListenKeys, sign  # noqa: E402
from gateway.simulator.wsapi import WsApiSession  # noqa: E402

NOW = 1_700_000_000_000_000


def user_order(market: Market, execution: str = "NEW") -> UserOrder:
    spec = scenario(market).market.specs[scenario(market).symbols[0]]
    filled = spec.lot_size if execution == "TRADE" else 0
    return UserOrder(
        spec, 42, "sim42", "BUY", spec.initial_price, spec.lot_size, filled,
        filled, spec.initial_price if filled else 0, 7, execution,
        "FILLED" if filled else "NEW", NOW,
    )  # fmt: skip


def spot_user(event: Any, legacy: bool) -> Any:
    return event if legacy else wsapi_event(event, 0)


def spot_spec() -> Any:
    return scenario(S).market.specs["BTCUSDT"]


SPOT_USER_EVENTS: dict[str, Any] = {
    "balanceUpdate": lambda: balance_update("BTC", 10**8, NOW),
    "externalLockUpdate": lambda: balance_update("NEO", 10**9, NOW, external_lock=True),
    "executionReport": lambda: execution_report(user_order(S)),
    "listStatus": lambda: list_status(spot_spec(), 2, [(17, "a"), (18, "b")], NOW),
    "outboundAccountPosition": lambda: outbound_account_position("ETH", 10**12, 0, NOW),
}
for _name, _make in SPOT_USER_EVENTS.items():
    PRODUCERS[f"spot-user/{_name}.json"] = lambda make=_make: spot_user(make(), legacy=False)
    PRODUCERS[f"spot-user/{_name}.legacy_listenKey.json"] = lambda make=_make: make()
PRODUCERS |= {
    "spot-user/eventStreamTerminated.json": lambda: wsapi_event(event_stream_terminated(NOW), 0),
    "spot-user/eventStreamTerminated.wsapi_2025-08-12.json": lambda: wsapi_event(
        event_stream_terminated(NOW), None
    ),
    "spot-user/listenKeyExpired.legacy_listenKey.json": lambda: listen_key_expired(
        S, "k" * 64, NOW
    ),
    "usdm-user/ACCOUNT_CONFIG_UPDATE.leverage.json": lambda: account_config_update(
        NOW, symbol="BTCUSDT"
    ),
    "usdm-user/ACCOUNT_CONFIG_UPDATE.multiAssets.json": lambda: account_config_update(NOW),
    "usdm-user/ACCOUNT_UPDATE.json": lambda: account_update(
        scenario(U).market.specs["BTCUSDT"], 10**12, 10**8, -(10**6), 6 * 10**12, NOW
    ),
    "usdm-user/MARGIN_CALL.json": lambda: margin_call(
        scenario(U).market.specs["BTCUSDT"], 10**6, 6 * 10**12, 10**8, NOW
    ),
    "usdm-user/ORDER_TRADE_UPDATE.json": lambda: order_trade_update(user_order(U)),
    "usdm-user/TRADE_LITE.json": lambda: trade_lite(user_order(U, "TRADE")),
    "usdm-user/listenKeyExpired.json": lambda: listen_key_expired(U, "k" * 64, NOW),
}


def futures_listen_keys() -> Any:
    keys = ListenKeys(3_600)
    created = keys.create("api", 0.0)
    return {
        "POST /fapi/v1/listenKey": {"listenKey": created},
        "PUT /fapi/v1/listenKey": {"listenKey": keys.keepalive(created, 10.0)},
        "DELETE /fapi/v1/listenKey": {},
    }


def exchange_info_skeleton() -> Any:
    from gateway.simulator.render_rest import spot_symbol_info as _symbol_info

    info = {
        "timezone": "UTC",
        "serverTime": NOW // 1_000,
        "rateLimits": rate_limits(S),
        "exchangeFilters": [],
        "symbols": [_symbol_info(spot_spec())],
        "sors": [],
    }
    return info


PRODUCERS["usdm-user/rest_listenKey.json"] = futures_listen_keys
PRODUCERS["spot/rest_exchangeInfo_skeleton.json"] = exchange_info_skeleton


def test_the_retired_spot_listen_key_endpoints_are_gone() -> None:
    assert vector("spot-user/rest_listenKey_RETIRED.json")
    # Covered over HTTP in tests/integration/test_simulator_userdata.py (404).


def test_futures_exchange_info_advertises_the_shared_budget() -> None:
    info = futures_exchange_info(U, [scenario(U).market.specs["BTCUSDT"]], NOW // 1_000)
    assert info["rateLimits"][0]["limit"] == 2_400


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_control_requests_get_the_documented_replies(market: str) -> None:
    messages = vector(f"{market}/control_messages.json")
    subscriptions: list[str] = []
    combined = False
    for method in (
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "LIST_SUBSCRIPTIONS",
        "SET_PROPERTY",
        "GET_PROPERTY",
    ):
        view = control.ConnectionView(
            subscriptions=list(subscriptions),
            combined=combined,
            accepts_stream=lambda name: True,
            unsigned_ids=market == "usdm",
        )
        outcome = control.answer(orjson.dumps(messages[method]["request"]).decode(), view)
        assert outcome.reply == messages[method]["response"], method
        subscriptions = [s for s in subscriptions if s not in outcome.unsubscribe]
        subscriptions += outcome.subscribe
        combined = combined if outcome.combined is None else outcome.combined


ERROR_TRIGGERS = [
    '{"method":"SET_PROPERTY","params":["colour",true],"id":1}',
    '{"method":"SET_PROPERTY","params":["combined","yes"],"id":1}',
    '{"method":"GET_PROPERTY","params":[5],"id":1}',
    '{"method":"LIST_SUBSCRIPTIONS","id":-1.5}',
    '{"method":"SUBSCRIPTION","params":[],"id":1}',
    '{"method":"LIST_SUBSCRIPTIONS","params":["x"],"id":1}',
    '{"params":["btcusdt@trade"],"id":1}',
    "{not json",
]


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_every_documented_error_frame_can_be_provoked(market: str) -> None:
    import re

    table = vector(f"{market}/control_messages.json")
    documented = table.get("errors") or [orjson.loads(e) for e in table["errors_verbatim"]]
    patterns = {
        (
            error["code"],
            re.escape(error["msg"])
            .replace("%s", ".+")
            .replace(r"line\ 1\ column\ 28", r"line\ \d+\ column\ \d+")
            .replace(r"line\ 1\ column\ 73", r"line\ \d+\ column\ \d+"),
        )
        for error in documented
    }
    view = control.ConnectionView(
        subscriptions=[],
        combined=False,
        accepts_stream=lambda n: True,
        unsigned_ids=market == "usdm",
    )
    provoked = [control.answer(text, view).reply for text in ERROR_TRIGGERS]
    for code, pattern in patterns:
        assert any(
            r and r.get("code") == code and re.fullmatch(pattern, r["msg"]) for r in provoked
        ), pattern
    for reply in provoked:
        assert reply is not None and set(reply) <= {"code", "msg", "id"}


def test_wsapi_user_stream_requests_get_the_documented_replies() -> None:
    examples = vector("spot-user/wsapi_user_stream_requests.json")
    session = WsApiSession(
        {"mjcKCrJzTU6TChLsnPmgnQJJMR616J4yWvdZWDUeXkk6vL6dLyS7rcVOQlADlVjA": "s3cret"}
    )
    signed = dict(examples["userDataStream.subscribe.signature"]["request"])
    params = dict(signed["params"])
    params["signature"] = sign("s3cret", params)
    signed["params"] = params
    reply = session.handle(orjson.dumps(signed).decode(), params["timestamp"])
    assert reply == examples["userDataStream.subscribe.signature"]["response"]
    listing = session.handle(orjson.dumps(examples["session.subscriptions"]["request"]).decode(), 0)
    assert_conforms(listing, examples["session.subscriptions"]["response"])
    gone = session.handle(
        orjson.dumps(examples["userDataStream.unsubscribe"]["request"]).decode(), 0
    )
    assert gone == examples["userDataStream.unsubscribe"]["response"]
    # The documented signature is Ed25519 (base64): an HMAC-only simulator refuses it.
    refused = session.handle(
        orjson.dumps(examples["userDataStream.subscribe.signature"]["request"]).decode(),
        params["timestamp"],
    )
    assert refused["status"] == 400 and refused["error"]["code"] == -1022
    assert_conforms(
        wsapi_event(server_shutdown_payload(NOW), None), examples["serverShutdown_event"]
    )


COVERED_ELSEWHERE = {
    "spot/control_messages.json": test_control_requests_get_the_documented_replies,
    "usdm/control_messages.json": test_control_requests_get_the_documented_replies,
    "spot-user/wsapi_user_stream_requests.json": test_wsapi_user_stream_requests_get_the_documented_replies,
    "spot-user/rest_listenKey_RETIRED.json": test_the_retired_spot_listen_key_endpoints_are_gone,
}


# --- after the 2026-06-30 USD-M / COIN-M integration (Binance's SDK examples) ----------------

from gateway.simulator.merger import SYMBOL_TYPE, stamped_builder  # noqa: E402
from gateway.simulator.payloads_algo import (  # noqa: E402
    AlgoOrder,
    algo_update,
    conditional_order_trigger_reject,
    grid_update,
    strategy_update,
)

OTHER_MARKET_SYMBOLS = {U: ("BTCUSD_PERP", "ETHUSD_PERP"), C: ("BTCUSDT", "ETHUSDT")}


@cache
def merged_scenario(market: Market) -> Scenario:
    return Scenario(market, merged=True, other_market_symbols=OTHER_MARKET_SYMBOLS[market])


def merged_frames(market: Market, name: str) -> list[Any]:
    """Every payload (array elements one by one) ``name`` sends now on the merged market."""
    frames = merged_scenario(market).render(name)
    return [item for f in frames for item in (f if isinstance(f, list) else [f])]


def own_contracts(market: Market, name: str, *, array: bool) -> Any:
    """The payloads of ``market``'s own contracts (the example's shape) on a merged stream."""
    own = [p for p in merged_frames(market, name) if p["st"] == SYMBOL_TYPE[market]]
    assert own, f"{name} sent none of {market.value}'s contracts"
    return own if array else own[-1]


def merged_stream(market: Market, name: str, *, array: bool = False) -> Any:
    return lambda: own_contracts(market, name, array=array)


def merged_agg_trade(market: Market) -> Any:
    sc = merged_scenario(market)
    fill = sc.fills[-1]
    build = stamped_builder(agg_trade_builder(market), market)
    return build(sc.market.specs[fill.agg_trade.symbol], fill.agg_trade)


def merged_book_ticker(market: Market) -> Any:
    sc = merged_scenario(market)
    return sc.market.book_ticker(sc.symbols[0], sc.now_us)(_MS)


MERGED_PRODUCERS: dict[str, Any] = {
    "usdm/aggTrade.merged.json": lambda: merged_agg_trade(U),
    "usdm/bookTicker.merged.json": lambda: merged_book_ticker(U),
    "usdm/bookTicker_all.merged.json": merged_stream(U, "!bookTicker"),
    "usdm/contractInfo.merged.json": merged_stream(U, "!contractInfo"),
    "usdm/depth_diff.merged.json": merged_stream(U, "btcusdt@depth@100ms"),
    "usdm/forceOrder_arr.merged.json": merged_stream(U, "!forceOrder@arr"),
    "usdm/markPrice.merged.json": merged_stream(U, "btcusdt@markPrice@1s"),
    "usdm/markPrice_arr.merged.json": merged_stream(U, "!markPrice@arr", array=True),
    "usdm/miniTicker.merged.json": merged_stream(U, "btcusdt@miniTicker"),
    "usdm/miniTicker_arr.merged.json": merged_stream(U, "!miniTicker@arr", array=True),
    "usdm/rpiDepth.merged.json": merged_stream(U, "btcusdt@rpiDepth@500ms"),
    "usdm/ticker.merged.json": merged_stream(U, "btcusdt@ticker"),
    "usdm/ticker_arr.merged.json": merged_stream(U, "!ticker@arr", array=True),
    "coinm/aggTrade.merged.json": lambda: merged_agg_trade(C),
    "coinm/bookTicker.merged.json": lambda: merged_book_ticker(C),
    "coinm/bookTicker_all.merged.json": lambda: merged_book_ticker(C),
    "coinm/contractInfo.merged.json": merged_stream(C, "!contractInfo"),
    "coinm/depth_diff.merged.json": merged_stream(C, "btcusd_perp@depth"),
    "coinm/forceOrder_arr.merged.json": merged_stream(C, "!forceOrder@arr"),
    "coinm/markPrice.merged.json": merged_stream(C, "btcusd_perp@markPrice"),
    "coinm/markPrice_pair_arr.merged.json": merged_stream(C, "btcusd@markPrice", array=True),
    "coinm/miniTicker_arr.merged.json": merged_stream(C, "!miniTicker@arr", array=True),
    "coinm/ticker_arr.merged.json": merged_stream(C, "!ticker@arr", array=True),
}


@pytest.mark.parametrize("relative", sorted(MERGED_PRODUCERS))
def test_merged_payload_matches_binances_sdk_example(relative: str) -> None:
    assert_conforms(MERGED_PRODUCERS[relative](), vector(relative), ordered=False)


@pytest.mark.parametrize(
    ("market", "name"),
    [(U, "!bookTicker"), (U, "!contractInfo"), (U, "!miniTicker@arr"), (U, "!markPrice@arr"),
     (U, "!ticker@arr"), (U, "!forceOrder@arr"), (C, "!contractInfo"), (C, "!miniTicker@arr"),
     (C, "!ticker@arr"), (C, "!forceOrder@arr")],
)  # fmt: skip
def test_merged_market_wide_streams_carry_both_markets_contracts(market: Market, name: str) -> None:
    seen: dict[int, set[str]] = {}
    for _ in range(5):  # liquidations and contract info come a few at a time
        for payload in merged_frames(market, name):
            symbol = payload["s"] if "s" in payload else payload["o"]["s"]
            seen.setdefault(payload["st"], set()).add(symbol)
        merged_scenario(market).run(30)
    own, other = SYMBOL_TYPE[market], 3 - SYMBOL_TYPE[market]
    assert seen.get(own, set()) <= set(SYMBOLS_OF[market]) and seen.get(own)
    assert seen.get(other, set()) <= set(OTHER_MARKET_SYMBOLS[market]) and seen.get(other)


def test_per_symbol_streams_carry_only_their_market_and_no_pre_merger_payload_has_st() -> None:
    assert {p["st"] for p in merged_frames(U, "btcusdt@miniTicker")} == {1}
    assert "st" not in scenario(U).one("!bookTicker")
    assert "ps" in scenario(U).one("!contractInfo")  # before the integration USD-M sent it


SYMBOLS_OF = {U: ("BTCUSDT", "ETHUSDT", "SOLUSDT"), C: ("BTCUSD_PERP", "ETHUSD_PERP")}


def algo(status: str = "NEW", order_id: int | None = None, order_type: str = "TAKE_PROFIT") -> Any:
    spec = scenario(U).market.specs["BTCUSDT"]
    return AlgoOrder(
        spec, 2148719, order_type, "SELL", spec.lot_size, spec.initial_price, status, NOW, order_id,
        reason="Reduce Only reject",
    )  # fmt: skip


PRODUCERS |= {
    "usdm-user/ALGO_UPDATE.json": lambda: algo_update(algo("CANCELED")),
    "usdm-user/CONDITIONAL_ORDER_TRIGGER_REJECT.json": lambda: conditional_order_trigger_reject(
        algo("REJECTED", 155618472834)
    ),
    "usdm-user/GRID_UPDATE.json": lambda: grid_update(
        scenario(U).market.specs["BTCUSDT"], 176057039, 10**12, 10**5, NOW
    ),
    "usdm-user/STRATEGY_UPDATE.json": lambda: strategy_update(
        scenario(U).market.specs["BTCUSDT"], 176054594, "NEW", NOW
    ),
    "coinm-user/GRID_UPDATE.json": lambda: grid_update(
        scenario(C).market.specs["BTCUSD_PERP"], 176057039, 10**12, 10**8, NOW
    ),
    "coinm-user/STRATEGY_UPDATE.json": lambda: strategy_update(
        scenario(C).market.specs["BTCUSD_PERP"], 176054594, "NEW", NOW
    ),
}


def test_a_trailing_algo_order_says_whether_it_is_activated() -> None:
    assert "ia" not in algo_update(algo())["o"]
    assert algo_update(algo("TRIGGERED", 7, "TRAILING_STOP_MARKET"))["o"]["ia"] is True


def test_every_vector_file_is_checked() -> None:
    covered = set(PRODUCERS) | set(RETIRED_STREAMS) | set(COVERED_ELSEWHERE)
    covered |= set(MERGED_PRODUCERS)
    assert set(all_vector_files()) - covered == set()


# Last, so that every producer registered above is parametrized.
@pytest.mark.parametrize("relative", sorted(PRODUCERS))
def test_payload_matches_the_documented_example(relative: str) -> None:
    assert_conforms(PRODUCERS[relative](), vector(relative))
