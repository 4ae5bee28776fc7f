import dataclasses
import struct
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, strategies as st

from gateway.binance.events.base import Scaled, as_decimal, scaled
from gateway.binance.markets import Market
from gateway.binance.messages import AggTrade, FrameParser, Trade
from gateway.errors import SerializationError
from gateway.records.avro import (
    ConfluentFraming,
    SchemaCatalog,
    SchemaKey,
    SingleObjectFraming,
    decode,
    read_header,
)
from gateway.records.builder import RecordBuilder
from gateway.records.topics import (
    HEADER_ALLOWANCE_BYTES,
    ProducerRecord,
    TopicNamer,
    oversize,
    record_size,
)
from tests.vectors import vector_bytes

CATALOG = SchemaCatalog.load()
EVENT_CLASSES = {SchemaKey("spot", "trade"): Trade, SchemaKey("spot", "agg_trade"): AggTrade}


def micros(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000 + dt.microsecond


def roundtrip(
    builder: RecordBuilder, event: Trade | AggTrade
) -> tuple[ProducerRecord, dict[str, Any]]:
    record = builder.build(event)
    header = read_header(record.value)
    writer = (
        CATALOG.by_fingerprint(header.fingerprint)
        if header.fingerprint is not None
        else next(iter(s for s in CATALOG if s.key == SchemaKey(event.market, event.KIND)))
    )
    assert writer is not None
    return record, decode(record.value, header, writer)


def assert_same(event: Trade | AggTrade, decoded: dict[str, Any]) -> None:
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        got = decoded[field.name]
        if field.name.endswith("_us"):
            got = micros(got)
        if isinstance(got, Decimal) and type(value) is int:
            value = as_decimal(Scaled(value))  # a Scaled field: the unscaled integer at scale 18
        assert got == value, field.name
        if isinstance(value, Decimal):
            assert got.as_tuple().exponent == -18  # scale 18 on the wire, value exact


@pytest.mark.parametrize("key", list(EVENT_CLASSES))
def test_schema_fields_are_exactly_the_event_fields(key: SchemaKey) -> None:
    schema_fields = [f["name"] for f in CATALOG[key].parsed["fields"]]
    assert schema_fields == [f.name for f in dataclasses.fields(EVENT_CLASSES[key])]
    assert all(f.get("doc") for f in CATALOG[key].parsed["fields"]), "every field is documented"


def test_every_schema_declares_decimals_and_no_floats() -> None:
    for schema in CATALOG:
        text = schema.text
        assert '"float"' not in text
        assert '"double"' not in text


@pytest.mark.parametrize("vector", ["spot/trade.json", "spot/aggTrade.json"])
@pytest.mark.parametrize("framing", ["single-object", "confluent"])
def test_vectors_roundtrip_exactly(vector: str, framing: str) -> None:
    ids = {schema.key: 100 + i for i, schema in enumerate(CATALOG)}
    chosen = SingleObjectFraming() if framing == "single-object" else ConfluentFraming(ids)
    builder = RecordBuilder(CATALOG, chosen, TopicNamer("binance"), "gw-test")
    [event] = FrameParser(Market.SPOT).parse(vector_bytes(vector), 1_700_000_000_000_123)
    assert isinstance(event, Trade | AggTrade)
    record, decoded = roundtrip(builder, event)
    assert_same(event, decoded)
    assert record.key == b"BNBBTC"
    assert record.topic == f"binance.spot.{event.KIND}"
    assert dict(record.headers) == {
        "event_kind": event.KIND.encode(),
        "received_at_us": b"1700000000000123",
        "gateway_id": b"gw-test",
    }
    if framing == "confluent":
        assert record.value[:5] == struct.pack(">bI", 0, ids[SchemaKey("spot", event.KIND)])
    else:
        assert record.value[:2] == b"\xc3\x01"


def test_unregistered_schema_under_confluent_framing_is_a_serialization_error() -> None:
    builder = RecordBuilder(CATALOG, ConfluentFraming({}), TopicNamer(), "gw")
    [event] = FrameParser(Market.SPOT).parse(vector_bytes("spot/trade.json"), 0)
    assert isinstance(event, Trade)
    with pytest.raises(SerializationError):
        builder.build(event)


@pytest.mark.parametrize("price", ["1e-19", "123456789012345678901", "0.0000000000000000001"])
def test_decimals_the_schema_cannot_hold_exactly_are_refused(price: str) -> None:
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer(), "gw")
    [event] = FrameParser(Market.SPOT).parse(vector_bytes("spot/trade.json"), 0)
    assert isinstance(event, Trade)
    with pytest.raises(SerializationError):
        # As the parser hands on a value beyond scale 18: its Decimal, for the writer to refuse.
        builder.build(dataclasses.replace(event, price=scaled(price, "p")))


def test_dead_letter_keeps_raw_bytes_and_reason() -> None:
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("x"), "gw")
    record = builder.dead_letter(
        market="spot",
        stream="btcusdt@trade",
        stage="parse",
        error="boom",
        raw=b"\xff{",
        received_at_us=5,
    )
    header = read_header(record.value)
    assert header.fingerprint is not None
    writer = CATALOG.by_fingerprint(header.fingerprint)
    assert writer is not None
    decoded = decode(record.value, header, writer)
    assert record.topic == "x.dead_letter"
    assert (decoded["raw"], decoded["error"], decoded["stream"]) == (
        b"\xff{",
        "boom",
        "btcusdt@trade",
    )


def test_unknown_framing_is_rejected() -> None:
    with pytest.raises(SerializationError):
        read_header(b"\x07garbage")


prices = st.decimals(min_value=0, max_value=Decimal("1e19"), places=8, allow_nan=False)


@given(
    trade_id=st.integers(0, 2**63 - 1),
    price=prices,
    quantity=prices,
    event_us=st.integers(0, 2**52),
    extra=st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=10), max_size=3),
)
def test_any_trade_roundtrips_exactly(
    trade_id: int, price: Decimal, quantity: Decimal, event_us: int, extra: dict[str, str]
) -> None:
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer(), "gw")
    event = Trade(
        "spot",
        "BTCUSDT",
        event_us,
        trade_id,
        scaled(str(price), "p"),
        scaled(str(quantity), "q"),
        event_us,
        True,
        None,
        None,
        event_us,
        extra,
    )
    _, decoded = roundtrip(builder, event)
    assert_same(event, decoded)


def test_the_smallest_record_limit_still_fits_a_dead_letter() -> None:
    from gateway.records.builder import MAX_DEAD_LETTER_BYTES, MAX_ERROR_CHARS
    from gateway.settings import MIN_RECORD_BYTES

    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer(), "gw")
    letter = builder.dead_letter(
        market="spot", stream="s" * 200, stage="parse", error="e" * 10 * MAX_ERROR_CHARS,
        raw=b"x" * 2 * MAX_DEAD_LETTER_BYTES, received_at_us=1,
    )  # fmt: skip
    from gateway.records.topics import record_size

    assert record_size(letter) < MIN_RECORD_BYTES


@given(
    value_size=st.integers(0, 3_000),
    key=st.none() | st.binary(max_size=40),
    header_sizes=st.lists(st.integers(0, 300), max_size=4),
    limit=st.integers(HEADER_ALLOWANCE_BYTES, HEADER_ALLOWANCE_BYTES + 4_000),
)
def test_oversize_is_the_size_check_without_summing_headers_far_below_the_limit(
    value_size: int, key: bytes | None, header_sizes: list[int], limit: int
) -> None:
    record = ProducerRecord(
        topic="t",
        key=key,
        value=b"v" * value_size,
        headers=[(f"h{i}", b"x" * size) for i, size in enumerate(header_sizes)],
    )
    size = record_size(record)
    assert oversize(record, limit) == (size if size > limit else None)
