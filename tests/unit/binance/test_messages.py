import contextlib
import dataclasses
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, strategies as st

from gateway.binance.events.base import Publishable, Scaled, as_decimal
from gateway.binance.events.books import BookTicker, DepthSnapshot, DepthUpdate, RpiDepthUpdate
from gateway.binance.events.derivatives import ContractInfo, MarkPrice, TradingSession
from gateway.binance.events.futures_user import OrderTradeUpdate
from gateway.binance.events.klines import ContinuousKline, Kline
from gateway.binance.events.spot_user import BalanceUpdate, ListenKeyExpired
from gateway.binance.markets import Market
from gateway.binance.messages import (
    AggTrade,
    ControlReply,
    FrameParser,
    ServerShutdown,
    Trade,
    channel_of,
)
from gateway.binance.streams import TimeUnit
from gateway.errors import MessageParseError
from tests.vectors import VECTORS_DIR, vector, vector_bytes


def units(text: str) -> Scaled:
    """The Scaled value of a decimal literal, as the parser makes it from Binance's string."""
    return Scaled(int(Decimal(text).scaleb(18)))


SPOT = FrameParser(Market.SPOT)


def test_spot_trade_vector_maps_every_field() -> None:
    [event] = SPOT.parse(vector_bytes("spot/trade.json"), received_at_us=42)
    assert event == Trade(
        market="spot",
        symbol="BNBBTC",
        event_time_us=1672515782136000,
        trade_id=12345,
        price=units("0.001"),
        quantity=units("100"),
        trade_time_us=1672515782136000,
        buyer_is_maker=True,
        best_match=True,
        trade_type=None,
        received_at_us=42,
        extra={},
    )


def test_combined_wrapper_is_unwrapped() -> None:
    [event] = SPOT.parse(vector_bytes("spot/combined_wrapper_example.json"), received_at_us=1)
    assert isinstance(event, AggTrade)
    assert (event.agg_trade_id, event.first_trade_id, event.last_trade_id) == (12345, 100, 105)
    assert event.price == units("0.001")


def test_microsecond_connections_keep_microseconds() -> None:
    payload = vector("spot/trade.json") | {"E": 1672515782136123, "T": 1672515782136001}
    [event] = FrameParser(Market.SPOT, TimeUnit.MICROSECOND).parse(orjson.dumps(payload), 0)
    assert isinstance(event, Trade)
    assert (event.event_time_us, event.trade_time_us) == (1672515782136123, 1672515782136001)


def test_a_field_binance_adds_tomorrow_is_kept_json_encoded() -> None:
    payload = vector("spot/trade.json") | {"Z": "NEW", "Y": {"a": [1, 2]}}
    [event] = SPOT.parse(orjson.dumps(payload), 0)
    assert isinstance(event, Trade)
    assert event.extra == {"Z": '"NEW"', "Y": '{"a":[1,2]}'}


def test_control_replies_and_errors() -> None:
    control = vector("spot/control_messages.json")
    [ok] = SPOT.parse(orjson.dumps(control["SUBSCRIBE"]["response"]), 0)
    assert ok == ControlReply(request_id=1, result=None)
    [listing] = SPOT.parse(orjson.dumps(control["LIST_SUBSCRIPTIONS"]["response"]), 0)
    assert isinstance(listing, ControlReply)
    assert listing.result == ["btcusdt@aggTrade"]
    [err] = SPOT.parse(b'{"code": 2, "msg": "Invalid request: too many parameters", "id": 7}', 0)
    assert isinstance(err, ControlReply)
    assert (err.error_code, err.request_id) == (2, 7)
    [wrapped] = SPOT.parse(b'{"error": {"code": 2, "msg": "Invalid request"}, "id": 8}', 0)
    assert isinstance(wrapped, ControlReply)
    assert (wrapped.error_code, wrapped.error_message, wrapped.request_id) == (
        2,
        "Invalid request",
        8,
    )


def test_server_shutdown_raw_and_combined() -> None:
    [raw] = SPOT.parse(vector_bytes("spot/serverShutdown.json"), 0)
    [combined] = SPOT.parse(vector_bytes("spot/serverShutdown.combined.json"), 0)
    assert isinstance(raw, ServerShutdown)
    assert isinstance(combined, ServerShutdown)


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (b"not json", "JSONDecodeError"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"e": "futureThing", "E": 1}', "unknown event type"),
        (b'{"E": 1}', "no event type"),
        (
            b'{"e":"trade","E":1,"s":"X","t":1,"p":0.1,"q":"1","T":1,"m":true}',
            "p must be a decimal",
        ),
        (b'{"e":"trade","E":1,"s":"X","t":1,"p":"NaN","q":"1","T":1,"m":true}', "not finite"),
        (b'{"e":"trade","E":1,"s":"X","t":true,"p":"1","q":"1","T":1,"m":true}', "t must be"),
        (b'{"e":"trade","E":1,"s":"X","t":1,"p":"1","q":"1","T":1,"m":1}', "m must be"),
        (b'{"e":"trade","E":1,"s":"","t":1,"p":"1","q":"1","T":1,"m":true}', "s must be"),
        (b'{"e":"trade","E":1,"s":"X","t":1,"p":"1","q":"1","T":1}', "KeyError"),
        (b'{"e":"trade","E":1,"s":"X","t":1,"p":"1.2.3","q":"1","T":1,"m":true}', "Invalid"),
    ],
)
def test_malformed_frames_raise_parse_errors_with_payload(frame: bytes, why: str) -> None:
    with pytest.raises(MessageParseError) as info:
        SPOT.parse(frame, 0)
    assert why in str(info.value)
    assert info.value.payload == frame


def test_parse_error_names_the_stream_of_a_combined_frame() -> None:
    frame = b'{"stream":"btcusdt@trade","data":{"e":"trade"}}'
    with pytest.raises(MessageParseError) as info:
        SPOT.parse(frame, 0)
    assert info.value.stream == "btcusdt@trade"


decimal_strings = st.decimals(
    min_value=Decimal("0"), max_value=Decimal("1e12"), places=8, allow_nan=False
).map(lambda d: f"{d:.8f}")


@given(
    trade_id=st.integers(0, 2**63 - 1),
    price=decimal_strings,
    quantity=decimal_strings,
    event_ms=st.integers(0, 2**41),
    maker=st.booleans(),
)
def test_any_well_formed_trade_parses_exactly(
    trade_id: int, price: str, quantity: str, event_ms: int, maker: bool
) -> None:
    payload = {
        "e": "trade",
        "E": event_ms,
        "s": "BTCUSDT",
        "t": trade_id,
        "p": price,
        "q": quantity,
        "T": event_ms,
        "m": maker,
        "M": True,
    }
    [event] = SPOT.parse(orjson.dumps(payload), 0)
    assert isinstance(event, Trade)
    assert as_decimal(event.price) == Decimal(price)
    # The value exactly; trailing zeros go, as they do on the wire (scale 18).
    assert as_decimal(event.quantity) == Decimal(quantity)
    assert event.trade_id == trade_id
    assert event.event_time_us == event_ms * 1000


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_anything_but_parse_errors(data: bytes) -> None:
    with contextlib.suppress(MessageParseError):
        SPOT.parse(data, 0)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
EVENT_TYPES = sorted(
    {"trade", "aggTrade", "kline", "depthUpdate", "24hrTicker", "1hTicker", "bookTicker"}
    | {"markPriceUpdate", "forceOrder", "contractInfo", "compositeIndex", "indexPrice_kline"}
    | {"continuous_kline", "EquityUpdate", "referencePrice", "avgPrice", "assetIndexUpdate"}
)
WIRE_KEYS = [*"eEsStpqTmMaflbBAuUkcohvnxiLwPOCFQVrWgGzXNI", "ps", "pu", "ap", "bks", "nq"]


@given(
    market=st.sampled_from(list(Market)),
    event_type=st.sampled_from(EVENT_TYPES),
    fields=st.dictionaries(st.sampled_from(WIRE_KEYS), json_values, max_size=12),
    stream=st.sampled_from([None, "btcusdt@depth5", "bnbusdt@bookTicker", "x@rpiDepth@500ms"]),
    wrap=st.sampled_from(["raw", "combined", "user", "array"]),
)
def test_structurally_valid_objects_with_random_values_fail_only_as_parse_errors(
    market: Market, event_type: str, fields: dict[str, object], stream: str | None, wrap: str
) -> None:
    payload = {"e": event_type, **fields}
    frame = {
        "raw": payload,
        "combined": {"stream": stream or "btcusdt@trade", "data": payload},
        "user": {"subscriptionId": 3, "event": payload},
        "array": [payload, payload],
    }[wrap]
    with contextlib.suppress(MessageParseError):
        FrameParser(market).parse(orjson.dumps(frame), 0, stream=stream)


@given(
    base=st.sampled_from(["spot/trade.json", "spot/kline.json", "usdm/contractInfo.json"]),
    key=st.sampled_from(WIRE_KEYS),
    value=json_values,
)
def test_any_one_field_replaced_by_any_json_value_fails_only_as_a_parse_error(
    base: str, key: str, value: object
) -> None:
    market = Market(base.split("/")[0])
    payload = vector(base) | {key: value}
    with contextlib.suppress(MessageParseError):
        FrameParser(market).parse(orjson.dumps(payload), 0)


def test_channel_of_strips_symbol_and_speed() -> None:
    assert channel_of("btcusdt@depth5@100ms") == "depth5"
    assert channel_of("btcusdt@kline_1m@+08:00") == "kline_1m"
    assert channel_of("!bookTicker") == "!bookTicker"
    assert channel_of("!miniTicker@arr") == "!miniTicker"
    assert channel_of("tradingSession") == "tradingSession"


def test_a_raw_connection_names_its_stream_once() -> None:
    parser = FrameParser(Market.SPOT, stream="bnbusdt@bookTicker")
    [event] = parser.parse(vector_bytes("spot/bookTicker.json"), 0)
    assert isinstance(event, BookTicker)
    assert event.event_time_us is None
    assert event.record_time_us == 0  # no event time: the receive time dates the record


def test_a_control_reply_on_a_raw_partial_depth_connection_is_still_a_reply() -> None:
    parser = FrameParser(Market.SPOT, stream="bnbbtc@depth5")
    [reply] = parser.parse(b'{"result": null, "id": 1}', 0)
    assert reply == ControlReply(request_id=1, result=None)


def test_spot_frames_without_event_type_need_a_stream_that_implies_one() -> None:
    with pytest.raises(MessageParseError, match="no event type"):
        SPOT.parse(vector_bytes("spot/bookTicker.json"), 0)
    with pytest.raises(MessageParseError, match="partial-depth payload needs its stream"):
        SPOT.parse(vector_bytes("spot/depth_partial.json"), 0, stream="depth5")


def test_futures_partial_depth_and_rpi_depth_are_told_apart_from_diffs_by_the_stream() -> None:
    usdm = FrameParser(Market.USDM)
    frame = vector_bytes("usdm/depth_partial.json")
    assert isinstance(usdm.parse(frame, 0)[0], DepthUpdate)
    assert isinstance(usdm.parse(frame, 0, stream="btcusdt@depth5@100ms")[0], DepthSnapshot)
    rpi = usdm.parse(vector_bytes("usdm/rpiDepth.json"), 0, stream="btcusdt@rpiDepth@500ms")
    assert isinstance(rpi[0], RpiDepthUpdate)
    assert not isinstance(rpi[0], DepthUpdate)


def test_each_market_knows_only_its_own_event_types() -> None:
    with pytest.raises(MessageParseError, match="unknown event type"):
        FrameParser(Market.USDM).parse(vector_bytes("spot/avgPrice.json"), 0)
    with pytest.raises(MessageParseError, match="unknown event type"):
        FrameParser(Market.COINM).parse(vector_bytes("usdm/compositeIndex.json"), 0)
    with pytest.raises(MessageParseError, match="unknown event type"):
        SPOT.parse(vector_bytes("usdm/markPrice.json"), 0)


def test_all_market_arrays_become_one_event_per_symbol() -> None:
    events = FrameParser(Market.COINM).parse(vector_bytes("coinm/markPrice_pair_arr.json"), 0)
    marks = [e for e in events if isinstance(e, MarkPrice)]
    assert len(marks) == len(events)
    assert [e.symbol for e in marks] == ["BTCUSD_201225", "BTCUSD_PERP"]
    assert [e.funding_rate for e in marks] == [None, 0]  # "" is null; "0.00000000" is 0


def test_unknown_nested_fields_are_kept_with_their_path() -> None:
    payload = vector("spot/kline.json")
    payload["k"] = payload["k"] | {"Z": [1]}
    [event] = SPOT.parse(orjson.dumps(payload), 0)
    assert isinstance(event, Kline)
    assert event.extra == {"k.Z": "[1]"}
    assert event.ignored == {"k.B": '"123456"'}
    info = vector("usdm/contractInfo.json")
    info["bks"][1]["new"] = "x"
    [event] = FrameParser(Market.USDM).parse(orjson.dumps(info), 0)
    assert isinstance(event, ContractInfo)
    assert event.extra == {"bks[1].new": '"x"'}


def test_contract_info_numbers_are_exact_decimals() -> None:
    [event] = FrameParser(Market.USDM).parse(vector_bytes("usdm/contractInfo.json"), 0)
    assert isinstance(event, ContractInfo)
    assert event.brackets is not None
    assert [b.maintenance_ratio for b in event.brackets] == [Decimal("0.01"), Decimal("0.025")]
    without = {k: v for k, v in vector("usdm/contractInfo.json").items() if k != "bks"}
    [event] = FrameParser(Market.USDM).parse(orjson.dumps(without), 0)
    assert isinstance(event, ContractInfo)
    assert event.brackets is None  # "unchanged", not "no brackets"


def test_kline_with_a_foreign_inner_symbol_is_malformed() -> None:
    payload = vector("spot/kline.json")
    payload["k"]["s"] = "ETHBTC"
    with pytest.raises(MessageParseError, match="differs"):
        SPOT.parse(orjson.dumps(payload), 0)


def test_ids_and_times_beyond_64_bits_are_refused() -> None:
    with pytest.raises(MessageParseError, match="64-bit"):
        SPOT.parse(orjson.dumps(vector("spot/trade.json") | {"t": 2**63}), 0)
    with pytest.raises(MessageParseError, match="64-bit"):
        SPOT.parse(orjson.dumps(vector("spot/trade.json") | {"E": 2**62}), 0)


def test_partition_keys_and_schema_groups() -> None:
    [trade] = SPOT.parse(vector_bytes("spot/trade.json"), 0)
    assert isinstance(trade, Trade)
    assert (trade.partition_key, trade.schema_group) == ("BNBBTC", "spot")
    [kline] = FrameParser(Market.USDM).parse(vector_bytes("usdm/continuousKline.json"), 0)
    assert isinstance(kline, ContinuousKline)
    assert kline.partition_key == "BTCUSDT"
    [session] = FrameParser(Market.USDM).parse(vector_bytes("usdm/tradingSession.json"), 0)
    assert isinstance(session, TradingSession)
    assert session.partition_key == "Equity"
    [price] = SPOT.parse(vector_bytes("spot/referencePrice.json"), 0)
    assert isinstance(price, Publishable)
    assert price.record_time_us == 1770313263917000


RETYPED: list[object] = [None, True, -1, 2**64 - 1, 1.5, "", "x", "-1e999", [], [[]], {}, {"a": 1}]
STREAMS = {
    "spot/bookTicker.json": "bnbusdt@bookTicker",
    "spot/depth_partial.json": "bnbbtc@depth5",
    "usdm/depth_partial.json": "btcusdt@depth5",
    "usdm/rpiDepth.json": "btcusdt@rpiDepth@500ms",
}
PAYLOAD_VECTORS = sorted(
    str(path.relative_to(VECTORS_DIR))
    for path in VECTORS_DIR.glob("*/*.json")
    if not path.name.startswith(("rest_", "control_", "wsapi_"))
)


def mutations(
    value: object, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], object]]:
    """Every way of replacing one value (at any depth) by a wrongly typed one."""
    items: Iterable[tuple[str | int, object]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, inner in items:
        for bad in RETYPED:
            yield (*path, key), bad
        yield from mutations(inner, (*path, key))


def replaced(document: object, path: tuple[str | int, ...], bad: object) -> Any:
    copy = orjson.loads(orjson.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    return copy


@pytest.mark.parametrize("name", PAYLOAD_VECTORS)
def test_every_value_of_every_vector_retyped_fails_only_as_a_parse_error(name: str) -> None:
    market = Market(name.split("/")[0].removesuffix("-user"))
    parser = FrameParser(market, stream=STREAMS.get(name))
    document = vector(name)
    for path, bad in mutations(document):
        with contextlib.suppress(MessageParseError):
            parser.parse(orjson.dumps(replaced(document, path, bad)), 0)


def test_user_data_wrappers_are_unwrapped_and_keep_the_subscription() -> None:
    [wrapped] = SPOT.parse(vector_bytes("spot-user/balanceUpdate.json"), 0)
    [legacy] = SPOT.parse(vector_bytes("spot-user/balanceUpdate.legacy_listenKey.json"), 0)
    assert isinstance(wrapped, BalanceUpdate)
    assert isinstance(legacy, BalanceUpdate)
    assert (wrapped.subscription_id, legacy.subscription_id) == (0, None)
    assert dataclasses.replace(wrapped, subscription_id=None) == legacy
    assert (wrapped.partition_key, wrapped.schema_group) == ("BTC", "spot_user")
    shutdown = vector("spot-user/wsapi_user_stream_requests.json")["serverShutdown_event"]
    assert isinstance(SPOT.parse(orjson.dumps(shutdown), 0)[0], ServerShutdown)


def test_coinm_order_updates_carry_account_alias_and_margin_asset() -> None:
    payload = vector("usdm-user/ORDER_TRADE_UPDATE.json")
    payload["i"] = "SfsR"
    payload["o"]["ma"] = "BTC"
    [event] = FrameParser(Market.COINM).parse(orjson.dumps(payload), 0)
    assert isinstance(event, OrderTradeUpdate)
    assert (event.account_alias, event.margin_asset, event.extra) == ("SfsR", "BTC", {})
    assert event.schema_group == "coinm_user"
    assert event.ignored == {"o.si": "0", "o.ss": "0"}


def test_account_wide_events_share_one_key() -> None:
    [update] = FrameParser(Market.USDM).parse(vector_bytes("usdm-user/ACCOUNT_UPDATE.json"), 0)
    [config] = FrameParser(Market.USDM).parse(
        vector_bytes("usdm-user/ACCOUNT_CONFIG_UPDATE.multiAssets.json"), 0
    )
    [leverage] = FrameParser(Market.USDM).parse(
        vector_bytes("usdm-user/ACCOUNT_CONFIG_UPDATE.leverage.json"), 0
    )
    assert isinstance(update, Publishable)
    assert isinstance(config, Publishable)
    assert isinstance(leverage, Publishable)
    assert (update.partition_key, config.partition_key) == ("account", "account")
    assert leverage.partition_key == "BTCUSDT"


def test_futures_listen_key_expiry_accepts_its_documented_string_time() -> None:
    [event] = FrameParser(Market.USDM).parse(vector_bytes("usdm-user/listenKeyExpired.json"), 0)
    assert isinstance(event, ListenKeyExpired)
    assert event.event_time_us == 1736996475556000


def test_trade_lite_is_usdm_only() -> None:
    with pytest.raises(MessageParseError, match="unknown event type"):
        FrameParser(Market.COINM).parse(vector_bytes("usdm-user/TRADE_LITE.json"), 0)


# Binance does not document the futures trade stream; this payload is the one peers captured live
# on fstream (JKorf/Binance.Net issue 1218; ccxt pull request 20137), see docs/binance-streams.md.
FUTURES_TRADE = (
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1679851564490,"T":1679851564486,'
    b'"s":"BTCUSDT","t":3493102749,"p":"27785.00","q":"0.014","X":"MARKET","m":true}}'
)


@pytest.mark.parametrize("market", [Market.USDM, Market.COINM])
def test_the_undocumented_futures_trade_stream_becomes_a_trade_record(market: Market) -> None:
    [event] = FrameParser(market).parse(FUTURES_TRADE, received_at_us=7)
    assert event == Trade(
        market=market.value,
        symbol="BTCUSDT",
        event_time_us=1679851564490000,
        trade_id=3493102749,
        price=units("27785.00"),
        quantity=units("0.014"),
        trade_time_us=1679851564486000,
        buyer_is_maker=True,
        best_match=None,
        trade_type="MARKET",
        received_at_us=7,
        extra={},
    )
    assert event.schema_group == market.value and event.partition_key == "BTCUSDT"


def test_a_frame_naming_a_stream_the_connection_did_not_subscribe_to_is_refused() -> None:
    import orjson
    import pytest

    from gateway.errors import MessageParseError
    from tests.vectors import vector

    parser = FrameParser(Market.SPOT, subscribed={"btcusdt@trade", "bnbbtc@trade"})
    frame = {"stream": "bnbBTC@trade", "data": vector("spot/trade.json")}
    assert parser.parse(orjson.dumps(frame), 1)  # Binance's case is not the point
    with pytest.raises(MessageParseError, match="not one this connection subscribed to"):
        parser.parse(orjson.dumps({**frame, "stream": "ethusdt@trade"}), 1)


def test_connection_events_come_on_streams_nobody_subscribed_to_and_are_not_refused() -> None:
    from tests.vectors import vector_bytes

    parser = FrameParser(Market.SPOT, subscribed={"btcusdt@trade"})
    [event] = parser.parse(vector_bytes("spot/serverShutdown.combined.json"), 1)
    assert isinstance(event, ServerShutdown)


def test_what_the_parser_remembers_per_stream_is_bounded_and_still_refuses() -> None:
    import orjson
    import pytest

    from gateway.binance import messages
    from gateway.errors import MessageParseError
    from tests.vectors import vector

    subscribed = {"btcusdt@trade"}
    parser = FrameParser(Market.SPOT, subscribed=subscribed)
    data = vector("spot/trade.json")
    for n in range(messages.MAX_REMEMBERED_STREAMS + 10):  # a server naming ever new streams
        with pytest.raises(MessageParseError, match="not one this connection subscribed to"):
            parser.parse(orjson.dumps({"stream": f"s{n}@trade", "data": data}), 1)
    assert len(parser._stream_parsers) <= messages.MAX_REMEMBERED_STREAMS
    assert parser.parse(orjson.dumps({"stream": "btcusdt@trade", "data": data}), 1)
    subscribed.add("ethusdt@trade")  # retargeted: the collection grows in place
    assert parser.parse(orjson.dumps({"stream": "ethusdt@trade", "data": data}), 1)
    with pytest.raises(MessageParseError, match="not one this connection subscribed to"):
        parser.parse(orjson.dumps({"stream": "xrpusdt@trade", "data": data}), 1)
