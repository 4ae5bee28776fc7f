"""The benchmark compares like with like: the reference writes the gateway's records, the feeder
speaks WebSocket, and a scenario's report has the figures the README table is made of."""

from __future__ import annotations

import base64
import hashlib
import io

import orjson
import pytest
from rich.console import Console

from gateway.adapters.decoder import ValueDecoder
from gateway.benchmark.feed import Market, accept_key, ws_frame
from gateway.benchmark.reference import KINDS, Encoder
from gateway.binance.markets import Market as BinanceMarket
from gateway.binance.messages import FrameParser
from gateway.commands.bench import SCENARIOS, Scenario, _print, summarize
from gateway.records.avro import SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer

CATALOG = SchemaCatalog.load()
STREAMS = (
    "btcusdt@aggTrade",
    "btcusdt@trade",
    "btcusdt@depth@100ms",
    "btcusdt@kline_1m",
    "btcusdt@ticker",
)


@pytest.mark.parametrize("stream", STREAMS)
async def test_the_reference_writes_the_record_the_gateway_writes(stream: str) -> None:
    frame = Market(levels=20).frame(stream)
    data = orjson.loads(frame)["data"]
    kind, build = KINDS[data["e"]]
    reference = Encoder().encode(kind, build(data, 1_700_000_000_000_000))

    [event] = FrameParser(BinanceMarket.SPOT).parse(frame, 1_700_000_000_000_000)
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("bench"), "bench")
    gateway = builder.build(event)  # type: ignore[arg-type]

    decoder = ValueDecoder(CATALOG)
    ours, theirs = await decoder.decode(reference), await decoder.decode(gateway.value)
    assert gateway.topic == f"bench.spot.{kind}"
    assert ours == theirs
    if kind == "depth_update":
        assert len(ours["bids"]) == len(ours["asks"]) == 20


def test_feeder_frames_carry_contiguous_ids_per_symbol() -> None:
    market = Market(levels=1)
    ids = [orjson.loads(market.frame("ethusdt@aggTrade"))["data"]["a"] for _ in range(3)]
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]


def test_feeder_handshake_and_frames_follow_rfc_6455() -> None:
    # RFC 6455 §1.3's worked example.
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert accept_key(b"abc") == base64.b64encode(
        hashlib.sha1(b"abc258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    )
    assert ws_frame(b"hi") == b"\x81\x02hi"
    assert ws_frame(b"x" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert ws_frame(b"x" * 70_000)[:10] == b"\x81\x7f" + (70_000).to_bytes(8, "big")


def run(rate: float, cpu: float, rss: float, cores: float = 0.5) -> dict[str, float]:
    return {"events_per_s": rate, "cpu_us_per_event": cpu, "cores_used": cores, "peak_rss_mib": rss}


def test_a_scenario_reports_medians_and_the_ratio_of_one_run() -> None:
    scenario = Scenario("aggTrade, 50 symbols", ("aggTrade",), 50, 10_000, repeats=3)
    full = {
        "gateway": [run(10_000, 60, 90), run(12_000, 50, 95), run(11_000, 55, 92)],
        "reference": [run(40_000, 20, 40), run(44_000, 18, 41), run(42_000, 19, 39)],
    }
    paced = {"gateway": {"p99_ms": 12.0}, "reference": {"p99_ms": 4.0}}
    report = summarize(scenario, 3, full, paced)
    assert report["full_speed"]["gateway"] == run(11_000, 55, 95)
    assert report["full_speed"]["reference"] == run(42_000, 19, 41)
    assert report["ratio"] == round(11_000 / 42_000, 3)
    assert report["paced"] == paced
    assert report["runs"] == full


def test_the_scenarios_cover_what_the_issue_asks() -> None:
    covered = {(s.channels, s.symbols) for s in SCENARIOS}
    assert {
        (("aggTrade",), 50),
        (("trade",), 50),
        (("depth@100ms",), 50),
        (("kline_1m", "ticker"), 50),
        (("aggTrade",), 1024),  # "1,024 streams on one process"
    } <= covered


def test_the_report_prints_every_figure_it_holds() -> None:
    scenario = SCENARIOS[0]
    full = {"gateway": [run(11_000, 55, 95)], "reference": [run(42_000, 19, 41)]}
    paced = {
        pipeline: {"p50_ms": 5.0, "p99_ms": 12.0, "cpu_us_per_event": 60.0} for pipeline in full
    }
    report = {
        "scenarios": [summarize(scenario, 1, full, paced)],
        "shard_start": {"scenario": "8 shards on one process", "shards_streaming": 8,
                        "first_s": 0.9, "last_s": 1.2, "spread_s": 0.3, "peak_rss_mib": 110.0},
        "codec": [{"event_kind": "spot trade", "events_per_s": 80_000.0}],
        "book_sync": {"books": 1000, "seconds": 3.9, "depth_limit": 100, "total_weight": 5000},
        "rotation": {"rotations": 36, "seconds": 10.0, "duplicated_in_kafka": 0,
                     "dropped_in_kafka": 0},
        "scale_out": [{"workers": 1, "shards": 12, "events_per_s": 14_700.0}],
        "failover": {"workers": 3, "failover_s": 7.1, "session_timeout_s": 6.0},
        "machine": {"cores": 2},
    }  # fmt: skip
    out = io.StringIO()
    _print(Console(file=out, width=200), report)
    text = out.getvalue()
    for figure in ("11,000", "42,000", "0.26", "spread 0.3 s", "80,000", "1,000 synced",
                   "36 rotations", "14,700", "after 7.1 s"):  # fmt: skip
        assert figure in text
