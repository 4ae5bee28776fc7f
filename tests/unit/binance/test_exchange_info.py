"""exchangeInfo: the official example, the simulator's bodies per market, and malformed bodies."""

from __future__ import annotations

import orjson
import pytest

from gateway.binance.exchange_info import ListedSymbol, parse_exchange_info
from gateway.binance.markets import Market
from gateway.binance.rest_payloads import exchange_info_call
from gateway.errors import ProtocolError
from gateway.simulator import markets as sim_markets
from gateway.simulator.engine import default_symbol_specs
from gateway.simulator.render_rest import futures_exchange_info, spot_symbol_info
from tests.vectors import vector, vector_bytes

# symbols[0] of the USDⓈ-M and COIN-M docs' exchangeInfo examples (developers.binance.com,
# "Exchange Information"), trimmed to the fields the parser reads plus a few it must ignore.
USDM_DOC_ENTRY = {
    "symbol": "BLZUSDT", "pair": "BLZUSDT", "contractType": "PERPETUAL",
    "deliveryDate": 4133404800000, "onboardDate": 1598252400000, "status": "TRADING",
    "baseAsset": "BLZ", "quoteAsset": "USDT", "marginAsset": "USDT", "filters": [],
}  # fmt: skip
COINM_DOC_ENTRY = {
    "symbol": "BTCUSD_200925", "pair": "BTCUSD", "contractType": "CURRENT_QUARTER",
    "deliveryDate": 1601020800000, "onboardDate": 1590739200000, "contractStatus": "TRADING",
    "baseAsset": "BTC", "quoteAsset": "USD", "marginAsset": "BTC", "filters": [],
}  # fmt: skip


def test_the_official_spot_example_is_one_trading_symbol() -> None:
    assert parse_exchange_info(Market.SPOT, vector_bytes("spot/rest_exchangeInfo_skeleton.json")) == (
        ListedSymbol("ETHBTC", "TRADING", "ETH", "BTC", None),
    )  # fmt: skip
    assert parse_exchange_info(Market.SPOT, vector("spot/rest_exchangeInfo_skeleton.json"))[
        0
    ].is_trading


def test_futures_read_their_own_status_field_contract_type_and_pair() -> None:
    usdm = parse_exchange_info(Market.USDM, {"symbols": [USDM_DOC_ENTRY]})
    coinm = parse_exchange_info(Market.COINM, {"symbols": [COINM_DOC_ENTRY]})
    assert usdm == (ListedSymbol("BLZUSDT", "TRADING", "BLZ", "USDT", "PERPETUAL", "BLZUSDT"),)
    assert coinm == (
        ListedSymbol("BTCUSD_200925", "TRADING", "BTC", "USD", "CURRENT_QUARTER", "BTCUSD"),
    )
    # The pair names pair-keyed streams; an entry without one leaves it unknown.
    no_pair = {k: v for k, v in USDM_DOC_ENTRY.items() if k != "pair"}
    assert parse_exchange_info(Market.USDM, {"symbols": [no_pair]})[0].pair is None
    # COIN-M's "status" is not its state: a COIN-M body with only "status" is malformed.
    entry = {k: v for k, v in COINM_DOC_ENTRY.items() if k != "contractStatus"} | {
        "status": "TRADING"
    }
    with pytest.raises(ProtocolError, match="contractStatus"):
        parse_exchange_info(Market.COINM, {"symbols": [entry]})


@pytest.mark.parametrize("market", [Market.USDM, Market.COINM])
def test_the_simulators_futures_bodies_parse(market: Market) -> None:
    sim_market = sim_markets.Market(market.value)
    names = ("BTCUSD_PERP", "ETHUSD_PERP") if market is Market.COINM else ("BTCUSDT", "ETHUSDT")
    specs = default_symbol_specs(names, 0, sim_market)
    body = orjson.dumps(futures_exchange_info(sim_market, specs, 1_700_000_000_000))
    listed = parse_exchange_info(market, body)
    assert [s.symbol for s in listed] == list(names)
    assert {(s.status, s.contract_type) for s in listed} == {("TRADING", "PERPETUAL")}


def test_the_simulators_spot_entries_parse() -> None:
    specs = default_symbol_specs(("BTCUSDT", "ETHBTC"), 0)
    body = {"symbols": [spot_symbol_info(spec) for spec in specs]}
    listed = parse_exchange_info(Market.SPOT, body)
    assert [(s.symbol, s.base_asset, s.quote_asset) for s in listed] == [
        ("BTCUSDT", "BTC", "USDT"), ("ETHBTC", "ETH", "BTC"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"timezone": "UTC"}', "no `symbols` list"),
        (b'{"symbols": {"BTCUSDT": {}}}', "no `symbols` list"),
        (b'{"symbols": ["BTCUSDT"]}', r"symbols\[0\] is not an object"),
        (b'{"symbols": [{"status": "TRADING"}]}', "`symbol`"),
        (b'{"symbols": [{"symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT"}]}',
         r"symbols\[0\] \(BTCUSDT\): `status`"),
        (b'{"symbols": [{"symbol": "X", "status": 1, "baseAsset": "X", "quoteAsset": "Y"}]}',
         "`status`"),
        (b'{"symbols": [{"symbol": "", "status": "TRADING"}]}', "`symbol`"),
    ],
)  # fmt: skip
def test_malformed_bodies_are_protocol_errors_that_say_what_is_wrong(
    body: bytes, reason: str
) -> None:
    with pytest.raises(ProtocolError, match=reason):
        parse_exchange_info(Market.SPOT, body)


def test_a_futures_entry_without_contract_type_is_malformed() -> None:
    entry = {k: v for k, v in USDM_DOC_ENTRY.items() if k != "contractType"}
    with pytest.raises(ProtocolError, match="contractType"):
        parse_exchange_info(Market.USDM, {"symbols": [entry]})


def test_exchange_info_calls_carry_binances_paths_and_weights() -> None:
    assert [(c.path, c.weight, c.params) for c in map(exchange_info_call, Market)] == [
        ("/api/v3/exchangeInfo", 20, {}),
        ("/fapi/v1/exchangeInfo", 1, {}),
        ("/dapi/v1/exchangeInfo", 1, {}),
    ]
