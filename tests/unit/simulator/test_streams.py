"""Stream names, connection URLs and the stream catalogue."""

import pytest

from gateway.simulator.payloads import TimeUnit
from gateway.simulator.streams import (
    MAX_STREAMS_PER_CONNECTION,
    Channel,
    StreamCatalog,
    StreamKey,
    StreamRequestError,
    UnknownPathError,
    parse_connection_target,
    parse_stream_name,
    stream_name,
)


def test_stream_names_are_lowercase_symbol_at_channel():
    assert stream_name("BTCUSDT", Channel.TRADE) == "btcusdt@trade"
    assert stream_name("BTCUSDT", Channel.AGG_TRADE) == "btcusdt@aggTrade"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("btcusdt@trade", StreamKey("BTCUSDT", Channel.TRADE)),
        ("bnbbtc@aggTrade", StreamKey("BNBBTC", Channel.AGG_TRADE)),
        ("BTCUSDT@trade", None),  # uppercase symbols are the classic client mistake
        ("btcusdt@aggtrade", None),
        ("btcusdt@depth", None),  # not served in v0
        ("btcusdt", None),
        ("@trade", None),
    ],
)
def test_parse_stream_name(name, key):
    assert parse_stream_name(name) == key


def test_combined_target():
    request = parse_connection_target("/stream?streams=btcusdt@trade/ethusdt@aggTrade")
    assert request.streams == ("btcusdt@trade", "ethusdt@aggTrade")
    assert request.combined is True
    assert request.time_unit is TimeUnit.MILLISECOND


def test_raw_target_with_several_streams_and_a_time_unit():
    request = parse_connection_target(
        "/ws/btcusdt@trade/btcusdt@trade/ethusdt@trade?timeUnit=microsecond"
    )
    assert request.streams == ("btcusdt@trade", "ethusdt@trade")  # duplicates collapse, order kept
    assert request.combined is False
    assert request.time_unit is TimeUnit.MICROSECOND


def test_url_encoded_targets_are_accepted():
    request = parse_connection_target("/stream?streams=btcusdt%40trade%2Fethusdt%40trade")
    assert request.streams == ("btcusdt@trade", "ethusdt@trade")


@pytest.mark.parametrize("target", ["/ws", "/ws/", "/stream", "/stream?streams="])
def test_targets_without_streams_are_valid(target):
    assert parse_connection_target(target).streams == ()


@pytest.mark.parametrize("target", ["/", "/api/v3/ping", "/wss/btcusdt@trade", "/streams"])
def test_other_paths_are_unknown(target):
    with pytest.raises(UnknownPathError):
        parse_connection_target(target)


def test_a_bad_time_unit_is_refused_with_a_reason():
    with pytest.raises(StreamRequestError, match="timeUnit"):
        parse_connection_target("/ws/btcusdt@trade?timeUnit=NANOSECOND")


def test_catalog_knows_every_channel_of_every_symbol():
    catalog = StreamCatalog(["BTCUSDT"])
    assert catalog.is_known("btcusdt@trade") and catalog.is_known("btcusdt@aggTrade")
    assert not catalog.is_known("ethusdt@trade")


def test_catalog_refuses_unknown_streams_unless_allowed():
    catalog = StreamCatalog(["BTCUSDT"])
    with pytest.raises(StreamRequestError, match="Invalid stream name ethusdt@trade"):
        catalog.check(["btcusdt@trade", "ethusdt@trade"])
    catalog.check(["ethusdt@trade"], allow_unknown=True)


def test_catalog_caps_streams_per_connection():
    catalog = StreamCatalog(["BTCUSDT"])
    catalog.check(["btcusdt@trade"], already=MAX_STREAMS_PER_CONNECTION - 1)
    with pytest.raises(StreamRequestError, match="Too many streams: 1025 > 1024"):
        catalog.check(["btcusdt@trade"], already=MAX_STREAMS_PER_CONNECTION, allow_unknown=True)
