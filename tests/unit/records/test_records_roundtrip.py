"""Any well-formed event survives encode → decode exactly (hypothesis), nested records included."""

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

import pytest
from hypothesis import given, strategies as st

from gateway.binance.events.base import Scaled
from gateway.binance.events.books import DepthUpdate, PriceLevel
from gateway.binance.events.futures_user import AccountUpdate, PositionUpdate, WalletBalance
from gateway.binance.events.klines import Kline
from gateway.errors import SerializationError
from gateway.records.avro import (
    SchemaCatalog,
    SchemaKey,
    SingleObjectFraming,
    encode,
)
from gateway.records.builder import event_datum
from tests.unit.avro_support import roundtrip

CATALOG = SchemaCatalog.load()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

decimals = st.decimals(min_value=-Decimal("1e19"), max_value=Decimal("1e19"), places=8)
positive = st.decimals(min_value=0, max_value=Decimal("1e19"), places=8)
ids = st.integers(0, 2**63 - 1)
times_us = st.integers(0, 2**52)
symbols = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=16)
extras = st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=10), max_size=3)
levels = st.lists(st.builds(PriceLevel, positive, positive), max_size=20)


def plain(value: object) -> object:
    """A decoded Avro value in the event's terms: datetimes as microseconds, records as tuples."""
    if isinstance(value, datetime):
        delta = value - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict) and set(value) == {"price", "quantity"}:
        return PriceLevel(value["price"], value["quantity"])
    return value


def assert_roundtrips(event: DepthUpdate | Kline) -> None:
    decoded = roundtrip(event)
    for field in dataclasses.fields(event):
        assert plain(decoded[field.name]) == getattr(event, field.name), field.name


@given(
    symbol=symbols,
    pair=st.none() | symbols,
    event_us=times_us,
    transaction_us=st.none() | times_us,
    first=ids,
    final=ids,
    previous=st.none() | ids,
    bids=levels,
    asks=levels,
    extra=extras,
)
def test_any_depth_update_roundtrips_exactly(
    symbol: str,
    pair: str | None,
    event_us: int,
    transaction_us: int | None,
    first: int,
    final: int,
    previous: int | None,
    bids: list[PriceLevel],
    asks: list[PriceLevel],
    extra: dict[str, str],
) -> None:
    event = DepthUpdate(
        "usdm", symbol, pair, event_us, transaction_us, first, final, previous, bids, asks, 1, extra
    )
    assert_roundtrips(event)


@given(
    prices=st.tuples(decimals, decimals, decimals, decimals),
    volumes=st.tuples(positive, positive, positive, positive),
    times=st.tuples(times_us, times_us, times_us),
    counts=st.tuples(ids, ids, ids),
    interval=st.sampled_from(["1s", "1m", "1h", "1M", "7x"]),
    timezone=st.none() | st.just("+08:00"),
    closed=st.booleans(),
    ignored=extras,
    extra=extras,
)
def test_any_kline_roundtrips_exactly(
    prices: tuple[Decimal, Decimal, Decimal, Decimal],
    volumes: tuple[Decimal, Decimal, Decimal, Decimal],
    times: tuple[int, int, int],
    counts: tuple[int, int, int],
    interval: str,
    timezone: str | None,
    closed: bool,
    ignored: dict[str, str],
    extra: dict[str, str],
) -> None:
    # Decimals where the type says Scaled: the writer takes both, and the round trip compares
    # what it decodes with the event's own values.
    o, c, h, low, v, q, bv, bq = (cast(Scaled, x) for x in (*prices, *volumes))
    event = Kline(
        "spot", "BTCUSDT", times[0], interval, timezone, times[1], times[2],
        o, c, h, low, v, q, bv, bq, *counts, closed, ignored, times[0], extra,
    )  # fmt: skip
    assert_roundtrips(event)


def test_a_nested_decimal_the_schema_cannot_hold_is_refused() -> None:
    event = DepthUpdate(
        "spot", "X", None, 1, None, 1, 2, None, [PriceLevel(Decimal("1e-19"), Decimal(1))], [], 1
    )
    with pytest.raises(SerializationError, match="decimals"):
        event_datum(event)
    with pytest.raises(SerializationError):
        encode(CATALOG[SchemaKey("spot", "depth_update")], SingleObjectFraming(), event)


wallets = st.lists(
    st.builds(WalletBalance, symbols, decimals, decimals, st.none() | decimals), max_size=5
)
positions = st.lists(
    st.builds(
        PositionUpdate,
        symbols,
        decimals,
        positive,
        st.none() | positive,
        decimals,
        decimals,
        st.sampled_from(["isolated", "cross"]),
        positive,
        st.sampled_from(["BOTH", "LONG", "SHORT"]),
    ),
    max_size=5,
)


@given(
    market=st.sampled_from(["usdm", "coinm"]),
    times=st.tuples(times_us, times_us),
    reason=st.sampled_from(["ORDER", "FUNDING_FEE", "SOMETHING_NEW"]),
    balances=wallets,
    positions=positions,
    extra=extras,
)
def test_any_account_update_roundtrips_exactly(
    market: str,
    times: tuple[int, int],
    reason: str,
    balances: list[WalletBalance],
    positions: list[PositionUpdate],
    extra: dict[str, str],
) -> None:
    event = AccountUpdate(
        market, None, times[0], times[1], reason, balances, positions, times[0], extra
    )
    decoded = roundtrip(event)
    assert event.schema_group == f"{market}_user"
    assert [WalletBalance(**b) for b in decoded["balances"]] == balances
    assert [PositionUpdate(**p) for p in decoded["positions"]] == positions
    assert (decoded["reason"], decoded["extra"]) == (reason, extra)
