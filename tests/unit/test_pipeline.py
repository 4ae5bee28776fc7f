"""The frame path with a recording sink: records out, dead letters for everything else."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.errors import StreamDisconnectedError
from gateway.metrics import Metrics
from gateway.records.avro import SchemaCatalog, SingleObjectFraming, decode, read_header
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.runtime.pipeline import FramePipeline
from tests.vectors import vector, vector_bytes

CATALOG = SchemaCatalog.load()
AT = 1_672_515_782_136_000  # received when Binance's example events happened (their E)


class RecordingSink:
    def __init__(self) -> None:
        self.records: list[ProducerRecord] = []

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None:
        self.records.append(record)


@pytest.fixture
def pipeline_and_sink() -> tuple[FramePipeline, RecordingSink, Metrics]:
    sink = RecordingSink()
    metrics = Metrics()
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")
    pipeline = FramePipeline(FrameParser(Market.SPOT), builder, sink, metrics, connection="spot-0")
    return pipeline, sink, metrics


def decoded(record: ProducerRecord) -> dict[str, Any]:
    header = read_header(record.value)
    assert header.fingerprint is not None
    writer = CATALOG.by_fingerprint(header.fingerprint)
    assert writer is not None
    return decode(record.value, header, writer)


async def test_events_become_records_on_their_topics(
    pipeline_and_sink: tuple[FramePipeline, RecordingSink, Metrics],
) -> None:
    pipeline, sink, metrics = pipeline_and_sink
    await pipeline(vector_bytes("spot/trade.json"), AT + 1, 0)
    await pipeline(vector_bytes("spot/combined_wrapper_example.json"), AT + 2, 0)
    assert [r.topic for r in sink.records] == ["p.spot.trade", "p.spot.agg_trade"]
    assert metrics.events.labels("spot", "trade").get() == 1


@pytest.mark.parametrize(
    "frame",
    [b"{oops", b'{"e":"mystery","E":1}', b'{"stream":"x@trade","data":{"e":"trade"}}'],
)
async def test_bad_frames_go_to_the_dead_letter_topic_and_the_stream_goes_on(
    pipeline_and_sink: tuple[FramePipeline, RecordingSink, Metrics], frame: bytes
) -> None:
    pipeline, sink, metrics = pipeline_and_sink
    await pipeline(frame, AT + 7, 0)
    await pipeline(vector_bytes("spot/trade.json"), AT + 8, 0)
    dead, good = sink.records
    assert dead.topic == "p.dead_letter"
    assert decoded(dead)["raw"] == frame
    assert decoded(dead)["stage"] == "parse"
    assert good.topic == "p.spot.trade"
    assert metrics.dead_letters.labels("spot", "parse").get() == 1


async def test_an_event_its_schema_cannot_hold_is_dead_lettered_at_encode(
    pipeline_and_sink: tuple[FramePipeline, RecordingSink, Metrics],
) -> None:
    pipeline, sink, _ = pipeline_and_sink
    frame = orjson.dumps(vector("spot/trade.json") | {"p": "0.0000000000000000001"})
    await pipeline(frame, AT + 1, 0)
    [dead] = sink.records
    assert decoded(dead)["stage"] == "encode"
    assert decoded(dead)["raw"] == frame


async def test_unknown_fields_are_counted_and_kept(
    pipeline_and_sink: tuple[FramePipeline, RecordingSink, Metrics],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline, sink, metrics = pipeline_and_sink
    frame = orjson.dumps(vector("spot/trade.json") | {"Z": 1})
    await pipeline(frame, AT + 1, 0)
    await pipeline(frame, AT + 2, 0)
    assert decoded(sink.records[0])["extra"] == {"Z": "1"}
    assert metrics.unknown_fields.labels("spot", "trade", "Z").get() == 2
    assert sum("'Z'" in r.getMessage() for r in caplog.records) == 1  # warned once


async def test_a_new_field_in_an_array_is_one_series_not_one_per_position(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, metrics = RecordingSink(), Metrics()
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")
    pipeline = FramePipeline(FrameParser(Market.USDM), builder, sink, metrics, connection="usdm-0")
    payload = vector("usdm/contractInfo.json")
    brackets = [dict(payload["bks"][0], bs=i, zz=i) for i in range(50)]
    # Received when Binance sent it: an event time far from the receive time is dead-lettered.
    received_at_us = payload["E"] * 1000
    await pipeline(orjson.dumps(payload | {"bks": brackets}), received_at_us, 0)
    [record] = sink.records
    assert len(decoded(record)["extra"]) == 50  # the data keeps every position
    samples = [
        s for f in metrics.unknown_fields.collect() for s in f.samples if s.name.endswith("_total")
    ]
    assert [(s.labels["field"], s.value) for s in samples] == [("bks[].zz", 50)]
    assert sum("bks[].zz" in r.getMessage() for r in caplog.records) == 1


async def test_server_shutdown_asks_for_a_reconnect(
    pipeline_and_sink: tuple[FramePipeline, RecordingSink, Metrics],
) -> None:
    pipeline, _, _ = pipeline_and_sink
    with pytest.raises(StreamDisconnectedError):
        await pipeline(vector_bytes("spot/serverShutdown.combined.json"), AT + 1, 0)


async def test_control_replies_produce_no_records(
    pipeline_and_sink: tuple[FramePipeline, RecordingSink, Metrics],
) -> None:
    pipeline, sink, _ = pipeline_and_sink
    await pipeline(b'{"result":null,"id":1}', AT + 1, 0)
    await pipeline(b'{"code":2,"msg":"Invalid request","id":2}', AT + 1, 0)
    assert sink.records == []


@pytest.mark.parametrize(
    ("frame", "topic", "key"),
    [
        (vector_bytes("spot/depth_diff.json"), "p.spot.depth_update", b"BNBBTC"),
        (
            orjson.dumps({"stream": "bnbusdt@bookTicker", "data": vector("spot/bookTicker.json")}),
            "p.spot.book_ticker",
            b"BNBUSDT",
        ),
        (vector_bytes("spot/kline.json"), "p.spot.kline", b"BNBBTC"),
    ],
)
async def test_every_record_event_is_published_on_its_kinds_topic(
    pipeline_and_sink: tuple[FramePipeline, RecordingSink, Metrics],
    frame: bytes,
    topic: str,
    key: bytes,
) -> None:
    pipeline, sink, _ = pipeline_and_sink
    await pipeline(frame, AT + 1, 0)
    [record] = sink.records
    assert (record.topic, record.key) == (topic, key)
    assert decoded(record)["market"] == "spot"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)
payload_like = st.fixed_dictionaries(
    {"e": st.sampled_from(["trade", "aggTrade", "depthUpdate", "kline", "24hrTicker", "x"])},
    optional={k: json_values for k in ["E", "s", "t", "p", "q", "T", "m", "U", "u", "b", "a", "k"]},
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=st.one_of(st.binary(max_size=200), payload_like.map(orjson.dumps),
                       payload_like.map(lambda p: orjson.dumps({"stream": "btcusdt@trade", "data": p}))))  # fmt: skip
async def test_no_frame_crashes_the_pipeline_each_one_is_published_or_dead_lettered(
    frame: bytes,
) -> None:
    sink = RecordingSink()
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")
    pipeline = FramePipeline(FrameParser(Market.SPOT), builder, sink, Metrics(), connection="c")
    await pipeline(frame, AT + 1, 0)
    assert len(sink.records) >= 1 or frame in (b"", b"[]")  # an empty array carries no events
    dead = [r for r in sink.records if r.topic == "p.dead_letter"]
    assert all(decoded(r)["raw"] == frame for r in dead)


async def test_a_huge_bad_frame_is_dead_lettered_cut_to_fit_kafka(
    pipeline_and_sink: tuple[FramePipeline, RecordingSink, Metrics],
) -> None:
    pipeline, sink, _ = pipeline_and_sink
    frame = b'{"e": "' + b"x" * 3_000_000 + b'"}'
    await pipeline(frame, AT + 1, 0)
    [dead] = sink.records
    record = decoded(dead)
    assert (len(record["raw"]), record["raw_size"]) == (256 * 1024, len(frame))
    assert record["raw"] == frame[: 256 * 1024]
    assert len(dead.value) < 1_000_000  # under Kafka's default max.message.bytes
