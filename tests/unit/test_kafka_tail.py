"""The backward scan's windows and the decoding of both framings, without a broker."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from decimal import Decimal

import pytest

from gateway.adapters.decoder import ValueDecoder
from gateway.adapters.kafka_tail import (
    ID_FIELDS,
    LastIdReader,
    PartitionScan,
    decode_ids,
    partition_for,
)
from gateway.binance.events.base import scaled
from gateway.binance.events.trades import AggTrade, Trade
from gateway.binance.markets import Market
from gateway.errors import SerializationError
from gateway.records.avro import (
    ConfluentFraming,
    SchemaCatalog,
    SchemaKey,
    SingleObjectFraming,
    encode,
)
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer
from gateway.settings import KafkaSettings

CATALOG = SchemaCatalog.load()


def read_all_windows(scan: PartitionScan, log: list[tuple[bytes, bytes]], begin: int = 0) -> int:
    """Drive the scan over an in-memory partition as the reader does; returns records read."""
    read = 0
    while not scan.finished:
        for offset in range(scan.lower, scan.upper):
            key, value = log[offset - begin]
            scan.receive(offset, key, value)
            read += 1
        scan.window_read()
    return read


def test_a_key_found_in_the_first_window_ends_the_scan() -> None:
    log = [(b"A", b"a%d" % i) for i in range(50)] + [(b"B", b"b%d" % i) for i in range(50)]
    scan = PartitionScan(0, 100, {b"A", b"B"}, window=60)
    assert read_all_windows(scan, log) == 60
    assert scan.found == {b"A": b"a49", b"B": b"b49"}
    assert scan.windows == 1


def test_an_older_key_is_found_in_a_larger_window_and_keeps_its_newest_value() -> None:
    log = [(b"OLD", b"old%d" % i) for i in range(5)] + [(b"NEW", b"n")] * 95
    scan = PartitionScan(0, 100, {b"OLD", b"NEW"}, window=10, growth=4)
    read_all_windows(scan, log)
    assert scan.found == {b"OLD": b"old4", b"NEW": b"n"}
    assert (scan.windows, scan.lower) == (3, 0)  # [90,100), [50,90), [0,50)


def test_the_scan_stops_at_the_cap_and_at_the_partition_start() -> None:
    log = [(b"A", b"a")] + [(b"B", b"b")] * 999
    capped = PartitionScan(0, 1000, {b"A", b"GHOST"}, window=10, max_records=300)
    assert read_all_windows(capped, log) == 300
    assert capped.found == {}
    whole = PartitionScan(0, 1000, {b"A", b"GHOST"}, window=10, max_records=10_000)
    assert read_all_windows(whole, log) == 1000
    assert whole.found == {b"A": b"a"}


def test_a_partition_cut_by_retention_is_scanned_from_its_start() -> None:
    log = [(b"A", b"a%d" % i) for i in range(500, 520)]
    scan = PartitionScan(500, 520, {b"A"}, window=8)
    assert read_all_windows(scan, log, begin=500) == 8
    assert scan.found == {b"A": b"a519"}


def test_an_empty_partition_or_no_wanted_key_reads_nothing() -> None:
    assert PartitionScan(7, 7, {b"A"}).finished
    assert PartitionScan(0, 10, set()).finished


def test_records_outside_the_window_or_without_a_value_are_ignored() -> None:
    scan = PartitionScan(0, 10, {b"A"}, window=5)
    scan.receive(3, b"A", b"too-old")  # fetches return whole batches, from before the window
    scan.receive(7, None, b"no-key")
    scan.receive(8, b"A", None)
    scan.receive(12, b"A", b"written-after-the-end-offsets")
    assert scan.window_read()
    assert scan.found == {}


# Kafka's own UtilsTest.testMurmur2 vectors: the Java client's hash of these keys.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "java_hash"), JAVA_MURMUR2.items())
@pytest.mark.parametrize("partitions", [1, 3, 6, 7])
def test_partition_for_agrees_with_kafkas_java_partitioner(
    key: bytes, java_hash: int, partitions: int
) -> None:
    # Java: Utils.toPositive(Utils.murmur2(key)) % numPartitions
    assert partition_for(key, range(partitions)) == (java_hash & 0x7FFFFFFF) % partitions
    assert partition_for(key, list(reversed(range(partitions)))) == partition_for(
        key, range(partitions)
    )


@pytest.mark.parametrize("group", ["spot", "usdm", "coinm"])
def test_the_id_fields_are_the_schemas_longs(group: str) -> None:
    for kind, field in ID_FIELDS.items():
        key = SchemaKey(group, kind)
        if key not in CATALOG:
            continue  # futures have no public trade stream
        fields = {f["name"]: f["type"] for f in CATALOG[key].parsed["fields"]}
        assert fields[field] == "long"


def trade(trade_id: int) -> Trade:
    return Trade(
        market="spot", symbol="BTCUSDT", event_time_us=1, trade_id=trade_id,
        price=scaled("1.5", "p"), quantity=scaled("2", "q"), trade_time_us=1, buyer_is_maker=False,
        best_match=None, trade_type=None, received_at_us=1,
    )  # fmt: skip


class FakeRegistry:
    def __init__(self, schemas: dict[int, str]) -> None:
        self.schemas = schemas
        self.lookups = 0

    async def schema_by_id(self, schema_id: int) -> str:
        self.lookups += 1
        return self.schemas[schema_id]


async def test_single_object_values_decode_without_a_registry() -> None:
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")
    value = builder.build(trade(42)).value
    assert (await ValueDecoder(CATALOG).decode(value))["trade_id"] == 42


async def test_registry_framed_values_fetch_their_schema_once() -> None:
    schema = CATALOG[SchemaKey("spot", AggTrade.KIND)]
    registry = FakeRegistry({17: schema.text})
    framing = ConfluentFraming({schema.key: 17})
    decoder = ValueDecoder(CATALOG, registry)  # type: ignore[arg-type]
    for agg_id in (5, 6):
        datum = {
            "market": "spot", "symbol": "BTCUSDT", "event_time_us": 1, "agg_trade_id": agg_id,
            "price": Decimal("1"), "quantity": Decimal("1"), "normal_quantity": None,
            "first_trade_id": 1, "last_trade_id": 1, "trade_time_us": 1,
            "buyer_is_maker": True, "best_match": None, "symbol_type": None, "received_at_us": 1,
            "extra": {},
        }  # fmt: skip
        value = encode(schema, framing, datum)
        assert value[:5] == b"\x00\x00\x00\x00\x11"
        assert (await decoder.decode(value))["agg_trade_id"] == agg_id
    assert registry.lookups == 1


async def test_registry_framed_values_need_a_registry() -> None:
    schema = CATALOG[SchemaKey("spot", Trade.KIND)]
    value = encode(schema, ConfluentFraming({schema.key: 3}), trade(1))
    with pytest.raises(SerializationError, match="no registry"):
        await ValueDecoder(CATALOG).decode(value)
    with pytest.raises(SerializationError, match="fingerprint"):
        await ValueDecoder(CATALOG).decode(b"\xc3\x01" + bytes(8) + b"body")


async def test_a_last_value_this_process_cannot_read_leaves_its_symbol_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")
    unknown_schema = b"\xc3\x01" + bytes(8) + b"a newer schema's body"
    ids = await decode_ids(
        {
            ("BTCUSDT", Trade.KIND): builder.build(trade(42)).value,
            ("ETHUSDT", Trade.KIND): unknown_schema,
        },
        ValueDecoder(CATALOG),
    )
    assert ids == {("BTCUSDT", Trade.KIND): 42}
    assert "ETHUSDT trade: its last record in Kafka cannot be read" in caplog.text


class CountingReader(LastIdReader):
    """A reader whose scan is faked: it answers every symbol with id 7 and records each scan."""

    def __init__(self) -> None:
        super().__init__(KafkaSettings(), TopicNamer("t"), ValueDecoder(CATALOG))
        self.scanned: list[frozenset[str]] = []
        self.release = asyncio.Event()

    async def _last_ids(
        self, market: Market, symbols: Collection[str]
    ) -> dict[tuple[str, str], int]:
        self.scanned.append(frozenset(symbols))
        await self.release.wait()
        return {(s, kind): 7 for s in symbols for kind in ID_FIELDS}

    async def close(self) -> None:
        await self._consumer.stop()  # never started: only releases the client


async def test_calls_made_together_are_served_by_one_scan() -> None:
    reader = CountingReader()
    reader.release.set()
    answers = await asyncio.gather(
        reader.last_ids(Market.SPOT, ["A", "B"]),
        reader.last_ids(Market.SPOT, ["C"]),
        reader.last_ids(Market.SPOT, ["D"]),
    )
    await reader.close()
    assert reader.scanned == [frozenset("ABCD")]
    assert [sorted({s for s, _ in answer}) for answer in answers] == [["A", "B"], ["C"], ["D"]]


async def test_calls_made_during_a_scan_share_the_next_one() -> None:
    reader = CountingReader()
    first = asyncio.create_task(reader.last_ids(Market.SPOT, ["A"]))
    while not reader.scanned:  # noqa: ASYNC110 - a few turns of the loop, plain state
        await asyncio.sleep(0)
    later = [asyncio.create_task(reader.last_ids(Market.SPOT, [s])) for s in "BCD"]
    await asyncio.sleep(0)
    reader.release.set()
    await asyncio.gather(first, *later)
    await reader.close()
    assert reader.scanned == [frozenset("A"), frozenset("BCD")]
    assert later[2].result() == {("D", kind): 7 for kind in ID_FIELDS}
