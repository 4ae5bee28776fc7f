"""Hostile upstream (issue 13): generated frames and REST answers through the real path to Kafka.

frame → FramePipeline (parser, plausibility, records) → TradeContinuity (dedup, backfill from a
REST double answering anything) → KafkaSink → a real broker. Each generated example is one symbol
of its own: a run of valid trades (some dropped, some repeated) interleaved with mutated frames
(garbage bytes, wrong types, broken envelopes, unsubscribed streams, implausible ids, event times
far off, oversized), while REST answers each backfill with rows, an object, HTML, bad rows, ids
nobody asked for, or nothing. Per example: nothing raises and the sink never fails (the worker
never exits). Then, read back from Kafka for every example: each valid trade arrived once, in
order, or its id was declared on ``trade_gap`` (never both); every mutated frame is in the
dead-letter topic, and so is every REST answer with unusable rows.

``make test`` runs ``HOSTILE_EXAMPLES`` examples (default 20, about 30 s on a busy 2-core machine); more on demand:
``HOSTILE_EXAMPLES=500 .venv/bin/pytest tests/faults/test_hostile_upstream.py``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.adapters.kafka import KafkaSink, ensure_topics
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.consumers.reader import ConsumedRecord, RecordReader
from gateway.errors import RestRequestError
from gateway.metrics import Metrics
from gateway.records.avro import SchemaCatalog, SingleObjectFraming
from gateway.records.builder import MAX_DEAD_LETTER_BYTES, RecordBuilder
from gateway.records.topics import TopicNamer
from gateway.runtime.pipeline import FrameLimits, FramePipeline
from gateway.runtime.sequence import TradeContinuity
from gateway.settings import MIN_RECORD_BYTES, KafkaSettings
from tests.continuity_support import RestDouble

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "20"))
MAX_RECORD_BYTES = MIN_RECORD_BYTES  # the smallest kafka.max_record_bytes allowed
BASE_ID = 5_000_000  # far above max_id_behind, so "far behind" ids exist
SUBSCRIBED = "{symbol}@trade"


@dataclass
class Example:
    symbol: str
    valid_ids: list[int]  # every id that exists on the exchange, in order
    frames: list[bytes]
    invalid: list[bytes]  # the frames that must be dead-lettered
    rest_answers: list[str]


@dataclass
class Run:
    examples: list[Example] = field(default_factory=list)


def now_ms() -> int:
    return int(time.time() * 1000)


def trade_data(symbol: str, trade_id: int, event_ms: int | None = None) -> dict[str, Any]:
    at = now_ms() if event_ms is None else event_ms
    return {"e": "trade", "E": at, "s": symbol, "t": trade_id, "p": "1.25", "q": "3",
            "T": at, "m": False, "M": True}  # fmt: skip


def envelope(symbol: str, data: Any, stream: Any = None) -> bytes:
    return orjson.dumps({"stream": SUBSCRIBED.format(symbol=symbol.lower()) if stream is None
                         else stream, "data": data})  # fmt: skip


# A mutation turns (symbol, an id, the last valid id) into a frame Binance must not be trusted for.
MUTATIONS = [
    "garbage", "text", "wrong_type", "no_event_type", "bad_envelope", "unsubscribed",
    "negative_id", "far_ahead", "far_behind", "event_time_ahead", "event_time_negative",
    "oversized", "empty_object",
]  # fmt: skip


def mutate(kind: str, symbol: str, trade_id: int, last_id: int, noise: bytes, n: int) -> bytes:
    data = trade_data(symbol, trade_id)
    match kind:
        case "garbage":  # never valid UTF-8, so never JSON
            return b"\xff" + noise
        case "text":
            return b"{" + noise.hex().encode()
        case "wrong_type":
            field_name, value = [("p", None), ("q", [1]), ("t", "x"), ("E", "soon"), ("s", 5),
                                 ("p", {"v": 1}), ("m", "no")][n % 7]  # fmt: skip
            return envelope(symbol, {**data, field_name: value})
        case "no_event_type":
            return orjson.dumps({k: v for k, v in data.items() if k != "e"})
        case "bad_envelope":
            return [orjson.dumps({"stream": 5, "data": data}),
                    envelope(symbol, 7), envelope(symbol, [1, 2])][n % 3]  # fmt: skip
        case "unsubscribed":
            return envelope(symbol, data, stream=f"zz{symbol.lower()}@trade")
        case "negative_id":
            return envelope(symbol, {**data, "t": -1 - n})
        case "far_ahead":
            return envelope(symbol, {**data, "t": last_id + 1_000_000 + n * 7_919})
        case "far_behind":
            return envelope(symbol, {**data, "t": last_id - 20_000 - n})
        case "event_time_ahead":
            return envelope(symbol, trade_data(symbol, trade_id, now_ms() + 2 * 3600 * 1000))
        case "event_time_negative":
            return envelope(symbol, trade_data(symbol, trade_id, -5))
        case "oversized":
            return envelope(symbol, {**data, "zz_padding": "x" * (MAX_RECORD_BYTES + n)})
        case "empty_object":
            return b"{}"
    raise AssertionError(kind)


REST_ANSWERS = ["good", "good", "object", "html", "bad_rows", "wrong_ids", "empty", "truncated"]


class HostileRest(RestDouble):
    """Binance's REST as a hostile one: each call answers the symbol's next scripted behaviour."""

    def __init__(self) -> None:
        self.by_symbol: dict[str, tuple[list[int], list[str]]] = {}
        self.calls: Counter[str] = Counter()

    async def answer(
        self, path: str, params: dict[str, str], weight: int, headers: dict[str, str] | None
    ) -> Any:
        symbol = params["symbol"]
        valid, answers = self.by_symbol[symbol]
        answer = answers[self.calls[symbol] % len(answers)]
        self.calls[symbol] += 1
        first = int(params["fromId"])
        ids = [i for i in valid if i >= first][: int(params["limit"])]

        def row(i: int) -> dict[str, Any]:
            return {"id": i, "price": "1.25", "qty": "3", "time": now_ms(),
                    "isBuyerMaker": False, "isBestMatch": True}  # fmt: skip

        match answer:
            case "good":
                return [row(i) for i in ids]
            case "object":
                return {"code": -1121, "msg": "Invalid symbol."}
            case "html":
                raise RestRequestError("answered something that is not JSON")
            case "truncated":
                raise RestRequestError("answered something that is not JSON")
            case "bad_rows":
                return [{**row(i), "price": None} if i % 2 else row(i) for i in ids]
            case "wrong_ids":
                return [row(i + 10_000_000) for i in ids]
            case "empty":
                return []
        raise AssertionError(answer)


async def read_everything(bootstrap: str, topic: str) -> list[ConsumedRecord]:
    """Every record of ``topic`` (all was flushed before: read until it stays idle)."""
    async with RecordReader([topic], bootstrap_servers=bootstrap) as reader:
        return [record async for record in reader.records(idle_timeout_s=3.0)]


@st.composite
def examples(draw: st.DrawFn, index: int) -> Example:
    symbol = f"H{index}USDT"
    count = draw(st.integers(2, 25))
    valid_ids = list(range(BASE_ID + 1, BASE_ID + count + 1))
    frames: list[bytes] = []
    invalid: list[bytes] = []
    last = valid_ids[0]
    frames.append(envelope(symbol, trade_data(symbol, last)))  # the first id a process trusts
    for trade_id in valid_ids[1:-1]:
        action = draw(st.sampled_from(["deliver", "deliver", "deliver", "drop", "repeat",
                                       "mutate"]))  # fmt: skip
        if action in ("deliver", "repeat"):
            frames.append(envelope(symbol, trade_data(symbol, trade_id)))
            if action == "repeat":
                frames.append(envelope(symbol, trade_data(symbol, trade_id)))
            last = trade_id
        elif action == "mutate":
            kind = draw(st.sampled_from(MUTATIONS))
            noise = draw(st.binary(max_size=64))
            frame = mutate(kind, symbol, trade_id, last, noise, draw(st.integers(0, 1000)))
            frames.append(frame)
            invalid.append(frame)
    # The last valid trade always comes: what was quarantined is judged by a later plausible id.
    frames.append(envelope(symbol, trade_data(symbol, valid_ids[-1])))
    answers = draw(st.lists(st.sampled_from(REST_ANSWERS), min_size=1, max_size=4))
    return Example(symbol, valid_ids, frames, invalid, answers)


def test_no_frame_or_rest_answer_stops_the_worker_or_loses_a_trade_silently(
    kafka_bootstrap: str,
) -> None:
    prefix = f"hostile{time.time_ns() % 10**9}"
    namer = TopicNamer(prefix)
    kafka = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=1,
        max_record_bytes=MAX_RECORD_BYTES,
    )  # fmt: skip
    builder = RecordBuilder(SchemaCatalog.load(), SingleObjectFraming(), namer, "hostile")
    trades, gaps, letters = (
        namer.topic("spot", "trade"),
        namer.gateway_topic("trade_gap"),
        namer.dead_letter_topic(),
    )
    rest = HostileRest()
    metrics = Metrics()
    run = Run()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(ensure_topics(kafka, [trades, gaps, letters]))
        sink = KafkaSink(kafka)
        sink.route_refusals(builder.refused)
        loop.run_until_complete(sink.start())
        continuity = TradeContinuity(
            Market.SPOT, rest, builder, sink, metrics,  # type: ignore[arg-type]
            give_up_s=0.3, report_held_s=60.0,
        )  # fmt: skip
        subscribed: set[str] = set()
        pipeline = FramePipeline(
            FrameParser(Market.SPOT, subscribed=subscribed), builder, sink, metrics,
            connection="hostile", continuity=continuity,
            limits=FrameLimits(max_record_bytes=MAX_RECORD_BYTES),
        )  # fmt: skip

        async def feed(example: Example) -> None:
            for frame in example.frames:
                await pipeline(frame, time.time_ns() // 1000, time.monotonic_ns())
            async with asyncio.timeout(30):  # every backfill settles: filled or declared
                while continuity._fetches:
                    await asyncio.gather(*continuity._fetches.values())
            await sink.flush()  # raises if the sink failed: the worker would exit

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(data=st.data())
        def one_example(data: st.DataObject) -> None:
            example = data.draw(examples(len(run.examples)))
            subscribed.add(SUBSCRIBED.format(symbol=example.symbol.lower()))
            rest.by_symbol[example.symbol] = (example.valid_ids, example.rest_answers)
            loop.run_until_complete(feed(example))
            run.examples.append(example)

        one_example()
        loop.run_until_complete(sink.stop())
        got_trades, got_gaps, got_letters = (
            loop.run_until_complete(read_everything(kafka_bootstrap, topic))
            for topic in (trades, gaps, letters)
        )
    finally:
        loop.close()

    published: dict[str, list[int]] = defaultdict(list)
    for record in sorted(got_trades, key=lambda r: r.offset):
        published[record.value["symbol"]].append(record.value["trade_id"])
    declared: dict[str, list[int]] = defaultdict(list)
    for record in got_gaps:
        first, last = record.value["first_missing_id"], record.value["last_missing_id"]
        declared[record.value["symbol"]].extend(range(first, last + 1))
    # A backfill answer with unusable rows is dead-lettered too (stage rest): the answer, a JSON
    # list, with every row's reason. The rest stand for frames.
    answers = [record for record in got_letters if record.value["stage"] == "rest"]
    for record in answers:
        assert isinstance(orjson.loads(record.value["raw"]), list), record.value["error"]
        assert "backfill" in record.value["error"] and " row " in record.value["error"]
    dead = Counter(record.value["raw"] for record in got_letters if record not in answers)

    for example in run.examples:
        ids = published[example.symbol]
        assert ids == sorted(set(ids)), (example.symbol, "repeated or out of order", ids)
        lost = declared[example.symbol]
        assert not set(ids) & set(lost), (example.symbol, "published and declared", lost)
        assert sorted(ids + lost) == example.valid_ids, (example.symbol, ids, lost)
        missing = Counter(frame[:MAX_DEAD_LETTER_BYTES] for frame in example.invalid) - dead
        assert not missing, (example.symbol, "not dead-lettered", list(missing))
        dead -= Counter(frame[:MAX_DEAD_LETTER_BYTES] for frame in example.invalid)
    assert not dead, ("dead letters for frames that were valid", list(dead)[:3])
