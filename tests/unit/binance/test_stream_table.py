"""docs/binance-streams.md against the code: every accepted channel, per market, builds exactly the
stream name and route the table lists, and the table lists every channel the code accepts."""

import itertools
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from gateway.binance.channels import CHANNELS, PLACEHOLDERS, Subject
from gateway.binance.events.catalog import RECORD_CLASSES
from gateway.binance.exchange_info import ListedSymbol
from gateway.binance.markets import Market
from gateway.coordination.plan import build_plan
from gateway.runtime.shards import connection_urls
from gateway.settings import BinanceSettings, MarketSettings

DOC = Path(__file__).resolve().parents[3] / "docs" / "binance-streams.md"
# One contract per market, with the pair and contract type exchangeInfo gives it.
LISTED = {
    Market.SPOT: ListedSymbol("BTCUSDT", "TRADING", "BTC", "USDT", None),
    Market.USDM: ListedSymbol("BTCUSDT", "TRADING", "BTC", "USDT", "PERPETUAL", "BTCUSDT"),
    Market.COINM: ListedSymbol("BTCUSD_PERP", "TRADING", "BTC", "USD", "PERPETUAL", "BTCUSD"),
}


def doc_sections() -> dict[str, list[list[str]]]:
    """Table rows (cells without backticks) under each ``## ... (`<market>`)`` heading and the
    placeholder table, keyed by market value and ``placeholders``."""
    sections: dict[str, list[list[str]]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        if heading := re.match(r"^## .*\(`(\w+)`\)$", line):
            current = heading.group(1)
        elif line.startswith("## Placeholders"):
            current = "placeholders"
        elif line.startswith("## "):
            current = None
        elif current and line.startswith("| `"):
            cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
            sections.setdefault(current, []).append(cells)
    return sections


SECTIONS = doc_sections()


def expand(template: str, market: Market) -> list[dict[str, str]]:
    """Every assignment of the template's placeholders (an empty one when it has none)."""
    names = [p for p in PLACEHOLDERS[market] if p in template]
    values = [PLACEHOLDERS[market][p] for p in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def fill(template: str, assignment: dict[str, str]) -> str:
    for placeholder, value in assignment.items():
        template = template.replace(placeholder, value)
    return template


def named(market: Market, name_template: str) -> str:
    """The documented name with the test contract's subject, lower-cased as Binance wants."""
    subject, at, channel = name_template.partition("@")
    if not at or not subject.startswith("<"):
        return name_template  # market-wide: the channel is the name
    listed = LISTED[market]
    subject = (
        subject.replace("<pair>_<contracttype>", f"{listed.pair}_{listed.contract_type}")
        .replace("<pair>", listed.pair or "")
        .replace("<symbol>", listed.symbol)
    )
    return f"{subject.lower()}@{channel}"


def subscribed(market: Market, channels: list[str], wide: list[str]) -> dict[str, str]:
    """Stream name -> route, from the plan and the connection URLs the gateway opens."""
    settings = BinanceSettings(
        markets={
            market: MarketSettings(
                symbols=(LISTED[market].symbol,),
                channels=tuple(channels),
                market_wide=tuple(wide),
                shards=1,
            )
        }
    )
    plan = build_plan(settings, {market: [LISTED[market]]})
    routes = {}
    for shard in plan.shards:
        for url in connection_urls(shard, settings).values():
            base = settings.stream_url(market)
            route, _, query = url.removeprefix(base).partition("/stream?streams=")
            for name in unquote(query.split("&")[0]).split("/"):
                routes[name] = route
    return routes


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.value)
def test_the_table_lists_exactly_the_channels_the_code_accepts(market: Market) -> None:
    rows = SECTIONS[market.value]
    assert [row[0] for row in rows] == [spec.template for spec in CHANNELS[market]]
    for row, spec in zip(rows, CHANNELS[market], strict=True):
        assert row[1] == spec.name_template, row
        assert row[3] == spec.kind, row


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.value)
def test_the_placeholders_are_the_codes(market: Market) -> None:
    column = 1 + list(Market).index(market)
    table = {row[0]: row[column].split() for row in SECTIONS["placeholders"]}
    for placeholder, values in PLACEHOLDERS[market].items():
        assert table[placeholder] == list(values), placeholder


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.value)
def test_every_channel_builds_the_documented_stream_name_and_route(market: Market) -> None:
    expected: dict[str, str] = {}
    channels: list[str] = []
    wide: list[str] = []
    for channel, name_template, route, _kind, _source in SECTIONS[market.value]:
        for assignment in expand(channel, market):
            (wide if name_template == channel else channels).append(fill(channel, assignment))
            expected[fill(named(market, name_template), assignment)] = (
                "" if route == "none" else route
            )
    assert subscribed(market, channels, wide) == expected


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.value)
def test_every_kind_has_a_topic_on_its_market(market: Market) -> None:
    kinds = {cls.KIND for cls in RECORD_CLASSES[market.value]}
    for spec in CHANNELS[market]:
        assert spec.kind in kinds, spec.template


def test_pair_keyed_names_are_the_ones_binance_documents() -> None:
    # The two wrong names, and the forms Binance's pages and SDK give.
    usdm = subscribed(Market.USDM, ["continuousKline_1m"], [])
    assert usdm == {"btcusdt_perpetual@continuousKline_1m": "/market"}
    coinm = subscribed(Market.COINM, ["indexPrice", "indexPriceKline_1m", "markPriceKline_1m"], [])
    assert set(coinm) == {"btcusd@indexPrice", "btcusd@indexPriceKline_1m",
                          "btcusd_perp@markPriceKline_1m"}  # fmt: skip
    assert {spec.subject for spec in CHANNELS[Market.COINM]} == set(Subject)


def test_default_channels_are_what_each_market_serves() -> None:
    settings = BinanceSettings.model_validate(
        {"markets": {"spot": {}, "usdm": {}, "coinm": {"symbols": ["BTCUSD_PERP"]}}}
    )
    assert settings.markets[Market.SPOT].channels == ("trade", "aggTrade")
    assert settings.markets[Market.USDM].channels == ("trade", "aggTrade")
    assert settings.markets[Market.COINM].channels == ("aggTrade",)
    explicit = BinanceSettings(markets={Market.COINM: MarketSettings(channels=("trade",))})
    assert explicit.markets[Market.COINM].channels == ("trade",)
