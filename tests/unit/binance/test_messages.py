import contextlib
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, strategies as st

from gateway.binance.markets import Market
from gateway.binance.messages import AggTrade, ControlReply, FrameParser, ServerShutdown, Trade
from gateway.binance.streams import TimeUnit
from gateway.errors import MessageParseError
from tests.vectors import vector, vector_bytes

SPOT = FrameParser(Market.SPOT)


def test_spot_trade_vector_maps_every_field():
    [event] = SPOT.parse(vector_bytes("spot/trade.json"), received_at_us=42)
    assert event == Trade(
        market="spot",
        symbol="BNBBTC",
        event_time_us=1672515782136000,
        trade_id=12345,
        price=Decimal("0.001"),
        quantity=Decimal("100"),
        trade_time_us=1672515782136000,
        buyer_is_maker=True,
        best_match=True,
        received_at_us=42,
        extra={},
    )


def test_combined_wrapper_is_unwrapped():
    [event] = SPOT.parse(vector_bytes("spot/combined_wrapper_example.json"), received_at_us=1)
    assert isinstance(event, AggTrade)
    assert (event.agg_trade_id, event.first_trade_id, event.last_trade_id) == (12345, 100, 105)
    assert event.price == Decimal("0.001")


def test_microsecond_connections_keep_microseconds():
    payload = vector("spot/trade.json") | {"E": 1672515782136123, "T": 1672515782136001}
    [event] = FrameParser(Market.SPOT, TimeUnit.MICROSECOND).parse(orjson.dumps(payload), 0)
    assert isinstance(event, Trade)
    assert (event.event_time_us, event.trade_time_us) == (1672515782136123, 1672515782136001)


def test_a_field_binance_adds_tomorrow_is_kept_json_encoded():
    payload = vector("spot/trade.json") | {"X": "NEW", "Y": {"a": [1, 2]}}
    [event] = SPOT.parse(orjson.dumps(payload), 0)
    assert event.extra == {"X": '"NEW"', "Y": '{"a":[1,2]}'}


def test_control_replies_and_errors():
    control = vector("spot/control_messages.json")
    [ok] = SPOT.parse(orjson.dumps(control["SUBSCRIBE"]["response"]), 0)
    assert ok == ControlReply(request_id=1, result=None)
    [listing] = SPOT.parse(orjson.dumps(control["LIST_SUBSCRIPTIONS"]["response"]), 0)
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


def test_server_shutdown_raw_and_combined():
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
def test_malformed_frames_raise_parse_errors_with_payload(frame, why):
    with pytest.raises(MessageParseError) as info:
        SPOT.parse(frame, 0)
    assert why in str(info.value)
    assert info.value.payload == frame


def test_parse_error_names_the_stream_of_a_combined_frame():
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
def test_any_well_formed_trade_parses_exactly(trade_id, price, quantity, event_ms, maker):
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
    assert event.price == Decimal(price)
    assert format(event.quantity, "f") == quantity  # digits kept exactly as sent
    assert event.trade_id == trade_id
    assert event.event_time_us == event_ms * 1000


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_anything_but_parse_errors(data):
    with contextlib.suppress(MessageParseError):
        SPOT.parse(data, 0)
